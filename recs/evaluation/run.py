"""Fit recommenders on one protocol's split, tune on validation, score test once: one table.

The table is a plain dict, one row per model:
`{"pop": {"recall@10", "ndcg@10", "coverage", "diversity", "fit_s", "customers_per_s"}, …}`.
A model that is missing or failed has every value None (the reason is in the notes).

Choices, following RecBole's general-recommender runs:
- hyper-parameters are chosen by NDCG@k on validation (seen = train items);
- the chosen model is the one fitted on train during tuning: no refit on train +
  validation (RecBole trains on train only and keeps validation for model selection);
- test excludes train and validation items, and counts users with a new test item.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recs.base import Recommender
from recs.dataset import InteractionLog
from recs.evaluation.baselines import ALS, EASE, ItemKNN, Popularity
from recs.evaluation.metrics import (
    catalog_coverage,
    intra_list_diversity,
    ndcg_at_k,
    recall_at_k,
)
from recs.evaluation.protocols import Split, relevant_items, split

PIPELINE = "reelcast"
COLUMNS = ("recall", "ndcg", "coverage", "diversity", "fit_s", "customers_per_s")


def grid(**axes: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    """Every combination of the given parameter values, as keyword dicts."""
    keys = list(axes)
    return tuple(
        dict(zip(keys, values, strict=True)) for values in itertools.product(*axes.values())
    )


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model, and the grid to tune it over on validation.

    `build` is None when the model cannot be built here (e.g. the pipeline module does
    not exist yet); `missing` says why.
    """

    name: str
    build: Callable[..., Recommender] | None
    grid: tuple[dict[str, Any], ...] = ({},)
    missing: str = ""


#: The pipeline's tuning grid: how its ranker's training labels are cut from the log. "auto"
#: (one time cutoff, or each user's latest events) mirrors a split by time; "user-last"
#: (each user's next event after their earlier ones) mirrors leave-last-out; "user-random"
#: (random shares of each user's events) mirrors a random split. Validation decides.
PIPELINE_GRID = grid(label_split=["auto", "user-last", "user-random"])


def _pipeline_spec(pipeline_grid: tuple[dict[str, Any], ...] = PIPELINE_GRID) -> ModelSpec:
    """The reelcast pipeline tuned over `pipeline_grid`, if `recs.pipeline` exists."""
    try:
        from recs.config import PipelineConfig
        from recs.pipeline import Pipeline
    except ImportError as error:
        return ModelSpec(PIPELINE, None, missing=f"recs.pipeline not importable ({error})")

    def build(**params: Any) -> Recommender:
        return Pipeline(PipelineConfig(**params))

    return ModelSpec(PIPELINE, build, pipeline_grid)


#: EASE inverts a dense items × items matrix: past this catalog size it is left out.
EASE_MAX_ITEMS = 20_000


def default_specs(
    *, quick: bool = False, pipeline: bool = True, n_items: int | None = None
) -> list[ModelSpec]:
    """The four baselines with their tuning grids, then the pipeline.

    With `n_items` above EASE_MAX_ITEMS, EASE is reported missing rather than run out of
    memory (it needs items² floats).

    Grids, tuned by validation NDCG@10 (full / `quick`):
    - itemknn: k ∈ {20, 50, 100, 200} × shrink ∈ {0, 10, 100} / k ∈ {50, 100}, shrink 0
    - ease: λ ∈ {50, 100, 250, 500, 1000} / {100, 500}
    - als: factors ∈ {64, 128} × regularization ∈ {1, 10, 30} × iterations ∈ {15, 30}
      × alpha ∈ {1, 3, 10} / factors 64, iterations 15, regularization ∈ {10, 30} × alpha ∈ {1, 3}
    - reelcast: `PIPELINE_GRID` (label_split ∈ {auto, user-last, user-random}), both settings
    - pop: no grid.
    """
    if quick:
        knn = grid(k=[50, 100], shrink=[0.0])
        ease = grid(lam=[100.0, 500.0])
        als = grid(factors=[64], regularization=[10.0, 30.0], iterations=[15], alpha=[1.0, 3.0])
    else:
        knn = grid(k=[20, 50, 100, 200], shrink=[0.0, 10.0, 100.0])
        ease = grid(lam=[50.0, 100.0, 250.0, 500.0, 1000.0])
        # Regularization far above implicit's default (0.01) won on MovieLens validation.
        als = grid(
            factors=[64, 128],
            regularization=[1.0, 10.0, 30.0],
            iterations=[15, 30],
            alpha=[1.0, 3.0, 10.0],
        )
    specs = [
        ModelSpec("pop", Popularity),
        ModelSpec("itemknn", ItemKNN, knn),
        ModelSpec("ease", EASE, ease)
        if (n_items or 0) <= EASE_MAX_ITEMS
        else ModelSpec("ease", None, missing=f"{n_items:,} items > EASE_MAX_ITEMS"),
        ModelSpec("als", ALS, als),
    ]
    return [*specs, _pipeline_spec()] if pipeline else specs


@dataclass
class Evaluation:
    """The metrics table plus how it was reached (chosen parameters, tuning scores, notes)."""

    protocol: str
    k: int
    table: dict[str, dict[str, float | None]]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuning: dict[str, list[tuple[dict[str, Any], float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    test_users: int = 0
    validation_users: int = 0


def _users_with_truth(truth: sp.csr_matrix) -> np.ndarray:
    return np.flatnonzero(np.diff(truth.indptr) > 0)


def _fit(model: Recommender, log: InteractionLog, now: float) -> tuple[Recommender, float]:
    started = time.perf_counter()
    model.fit(log, now=now)
    return model, time.perf_counter() - started


def _row(
    model: Recommender,
    fit_s: float,
    users: np.ndarray,
    truth: sp.csr_matrix,
    seen: sp.csr_matrix,
    log: InteractionLog,
    k: int,
) -> dict[str, float | None]:
    """Score `users` once and measure the list they get."""
    started = time.perf_counter()
    recommended = model.recommend_indices(users, k, exclude=seen)
    seconds = time.perf_counter() - started
    rows = truth[users]
    return {
        f"recall@{k}": recall_at_k(recommended, rows, k),
        f"ndcg@{k}": ndcg_at_k(recommended, rows, k),
        "coverage": catalog_coverage(recommended, log.n_items),
        "diversity": (
            None
            if log.item_category is None
            else intra_list_diversity(recommended, log.item_category)
        ),
        "fit_s": fit_s,
        "customers_per_s": len(users) / seconds if seconds > 0 else None,
    }


def _empty_row(k: int) -> dict[str, float | None]:
    return dict.fromkeys((f"recall@{k}", f"ndcg@{k}", *COLUMNS[2:]))


def evaluate_detailed(
    log: InteractionLog,
    protocol: str | Split,
    recommenders: Sequence[ModelSpec | Recommender] | None = None,
    k: int = 10,
    *,
    on_error: Literal["raise", "record"] = "raise",
) -> Evaluation:
    """Split `log` by `protocol`, tune each ModelSpec on validation, score test once.

    A Recommender instance (not a spec) is fitted as it is, without tuning. With
    `on_error="record"`, a model that raises gets an all-None row and a note instead.
    """
    parts = protocol if isinstance(protocol, Split) else split(log, protocol)
    now = float(parts.train.time.max()) + 1.0 if len(parts.train.time) else 0.0
    val_seen, test_seen = parts.validation_seen, parts.test_seen
    val_truth = relevant_items(parts.validation, val_seen)
    test_truth = relevant_items(parts.test, test_seen)
    val_users, test_users = _users_with_truth(val_truth), _users_with_truth(test_truth)
    result = Evaluation(
        parts.protocol, k, {}, test_users=len(test_users), validation_users=len(val_users)
    )
    if recommenders is None:
        recommenders = default_specs(n_items=log.n_items)
    for entry in recommenders:
        name = entry.name
        if isinstance(entry, ModelSpec) and entry.build is None:
            result.table[name] = _empty_row(k)
            result.notes.append(f"{name}: missing: {entry.missing}")
            continue
        try:
            if not isinstance(entry, ModelSpec):
                model, fit_s = _fit(entry, parts.train, now)
            else:
                model, fit_s, params = _tune(entry, parts, now, val_users, val_truth, k, result)
                result.params[name] = params
            result.table[name] = _row(model, fit_s, test_users, test_truth, test_seen, log, k)
        except Exception as error:
            if on_error == "raise":
                raise
            result.table[name] = _empty_row(k)
            result.notes.append(f"{name}: failed: {type(error).__name__}: {error}")
    return result


def _tune(
    spec: ModelSpec,
    parts: Split,
    now: float,
    users: np.ndarray,
    truth: sp.csr_matrix,
    k: int,
    result: Evaluation,
) -> tuple[Recommender, float, dict[str, Any]]:
    """Fit every grid point on train; keep the one with the best validation NDCG@k."""
    assert spec.build is not None
    if len(spec.grid) == 1 or not len(users):
        model, fit_s = _fit(spec.build(**spec.grid[0]), parts.train, now)
        return model, fit_s, dict(spec.grid[0])
    best: tuple[float, Recommender, float, dict[str, Any]] | None = None
    scores = result.tuning.setdefault(spec.name, [])
    seen = parts.validation_seen
    for params in spec.grid:
        model, fit_s = _fit(spec.build(**params), parts.train, now)
        recommended = model.recommend_indices(users, k, exclude=seen)
        score = ndcg_at_k(recommended, truth[users], k)
        scores.append((dict(params), score))
        if best is None or score > best[0]:
            best = (score, model, fit_s, dict(params))
    assert best is not None
    return best[1], best[2], best[3]


def evaluate(
    log: InteractionLog,
    protocol: str,
    recommenders: Sequence[ModelSpec | Recommender] | None = None,
    k: int = 10,
) -> dict[str, dict[str, float | None]]:
    """The metrics table of `evaluate_detailed` (default: tuned baselines and the pipeline).

    `protocol` is "leave-last-out" or "random-80-10-10".
    """
    return evaluate_detailed(log, protocol, recommenders, k).table


def pipeline_ratio(
    table: Mapping[str, Mapping[str, float | None]], k: int = 10, pipeline: str = PIPELINE
) -> float | None:
    """The pipeline's NDCG@k over the best other row's; None when either is missing."""
    key = f"ndcg@{k}"
    ours = table.get(pipeline, {}).get(key)
    others = [value for name, row in table.items() if name != pipeline and (value := row.get(key))]
    if ours is None or not others:
        return None
    return float(ours) / max(others)


def format_table(result: Mapping[str, Mapping[str, float | None]], title: str = "") -> str:
    """The table as aligned text for a terminal; missing values print as '—'."""
    k = next(
        (key.split("@")[1] for row in result.values() for key in row if key.startswith("recall@")),
        "10",
    )
    head = ("model", f"R@{k}", f"N@{k}", "coverage", "diversity", "fit s", "customers/s")
    formats = ("{:.4f}", "{:.4f}", "{:.3f}", "{:.3f}", "{:.2f}", "{:,.0f}")
    lines = [title] if title else []
    lines.append(f"{head[0]:10s}" + "".join(f"{h:>12s}" for h in head[1:]))
    for name, row in result.items():
        keys = (f"recall@{k}", f"ndcg@{k}", *COLUMNS[2:])
        cells = [
            "—" if row.get(key) is None else fmt.format(row[key])
            for key, fmt in zip(keys, formats, strict=True)
        ]
        lines.append(f"{name:10s}" + "".join(f"{c:>12s}" for c in cells))
    return "\n".join(lines)
