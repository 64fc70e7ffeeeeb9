"""EASE (Steck 2019): a closed-form item-item model, strong on small and mid catalogs."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recs.config import PipelineConfig
from recs.history import History
from recs.matrix import compact, dense_top_k, in_rows


class Ease:
    """B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹; a user's scores are x_u·B."""

    name = "ease"

    def fit(self, history: History, config: PipelineConfig) -> Self:
        """Invert the regularised item Gram matrix (O(items³): only for modest catalogs)."""
        x = history.seen.astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += config.ease_lambda
        with threadpool_limits(config.threads, "blas"):
            precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights.astype(np.float32)
        self.profile = history.seen
        # Items nobody touched have all-zero weights: a score of 0 says nothing about them
        # (cold items reach customers through content similarity instead).
        self.cold = np.flatnonzero(history.item_count == 0)
        return self

    def _dense(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.profile[users] @ self.weights, dtype=np.float32)

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best EASE scores over the whole catalog, excluded items masked first."""
        scores = self._dense(users)
        r, c = exclude.nonzero()
        scores[r, c] = -np.inf
        scores[:, self.cold] = -np.inf
        items, vals = dense_top_k(scores, k)
        return compact(items, vals, (items >= 0) & ~in_rows(items, exclude), k)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """EASE score of each pair."""
        return np.take_along_axis(self._dense(users), np.maximum(items, 0), axis=1)

    def profile_score(self, profile: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """EASE score of each item from a weighted item profile per row (e.g. recent items)."""
        dense = np.asarray(profile @ self.weights, dtype=np.float32)
        return np.take_along_axis(dense, np.maximum(items, 0), axis=1)
