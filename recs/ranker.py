"""LightGBM LambdaRank over the candidates' features: the second stage."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from recs.config import PipelineConfig


class Ranker:
    """A LambdaRank booster with named features; deterministic for a fixed seed and threads."""

    def __init__(self, booster: lgb.Booster, names: tuple[str, ...]) -> None:
        """Wrap a trained booster whose columns are `names`."""
        self.booster = booster
        self.names = names

    @property
    def rounds(self) -> int:
        """Boosting rounds in the model."""
        return int(self.booster.current_iteration())

    @classmethod
    def train(
        cls,
        x: np.ndarray,
        labels: np.ndarray,
        groups: np.ndarray,
        names: tuple[str, ...],
        config: PipelineConfig,
    ) -> Ranker:
        """Fit on rows `x` (grouped by user, `groups` = rows per user) with graded labels."""
        params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [config.ranker_eval_at],
            "lambdarank_truncation_level": max(2 * config.ranker_eval_at, 20),
            "learning_rate": config.ranker_learning_rate,
            "num_leaves": config.ranker_leaves,
            "min_data_in_leaf": config.ranker_min_leaf,
            "feature_fraction": config.ranker_feature_fraction,
            "feature_fraction_seed": config.seed,
            "bagging_seed": config.seed,
            "data_random_seed": config.seed,
            "seed": config.seed,
            "deterministic": True,
            "force_row_wise": True,
            # One thread unless asked: LightGBM's OpenMP spin-waits collapsed 12× (4 s → 48 s)
            # with two threads on a busy 2-core box, and per-user batches are small anyway.
            "num_threads": config.threads or 1,
            "verbosity": -1,
        }
        data = lgb.Dataset(
            x, label=labels, group=groups, feature_name=list(names), free_raw_data=True
        )
        booster = lgb.train(params, data, num_boost_round=config.ranker_rounds)
        return cls(booster, names)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Relevance score per row (higher is better); only the order within a user matters."""
        if len(x) == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.predict(x))  # already an array: asarray only types it

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per row, each feature's SHAP contribution to the score (rows × features)."""
        if len(x) == 0:
            return np.empty((0, len(self.names)))
        return np.asarray(self.booster.predict(x, pred_contrib=True))[:, : len(self.names)]
