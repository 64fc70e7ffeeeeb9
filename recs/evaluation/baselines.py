"""Single-model baselines behind the `Recommender` protocol: popularity, item-kNN, EASE, ALS.

Each learns from "who touched what" (a binary users × items matrix; event kinds and
times are ignored, as in RecBole's general recommenders) and scores users in batches.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recs.dataset import InteractionLog
from recs.evaluation.protocols import interaction_matrix
from recs.sources.embedding import fit_als

# Users scored per block: bounds the dense users × items score block (2048 × 50k floats
# is 400 MB; real catalogs past that should use the pipeline's Faiss retrieval).
_BATCH = 1024


def top_n(scores: np.ndarray, n: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Best `n` columns per row of `scores`, best first, -1 where fewer remain.

    Columns marked in `exclude` (same rows as `scores`) are never returned. Equal scores
    go to the lower column, so results do not depend on the platform's partition order.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None and exclude.nnz:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    n = min(n, scores.shape[1])
    if n <= 0:
        return np.full((scores.shape[0], max(n, 0)), -1, dtype=np.int64)
    # Partition first (linear), then sort only the n kept, breaking ties by column.
    kept = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    kept_scores = np.take_along_axis(scores, kept, axis=1)
    order = np.lexsort((kept, -kept_scores), axis=1)
    best = np.take_along_axis(kept, order, axis=1)
    best_scores = np.take_along_axis(kept_scores, order, axis=1)
    return np.where(np.isfinite(best_scores), best, -1).astype(np.int64)


class _Scorer:
    """Shared batching: a subclass fits `self.x` and says how to score a block of users."""

    name = ""
    x: sp.csr_matrix

    def _fit_matrix(self, log: InteractionLog) -> sp.csr_matrix:
        self.x = interaction_matrix(log).astype(np.float32)
        return self.x

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Dense scores, len(users) × items; higher is better."""
        raise NotImplementedError

    def recommend_indices(
        self, users: np.ndarray, n: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-`n` item indices per user, best first, -1 padded (see `Recommender`)."""
        users = np.asarray(users, dtype=np.int64)
        blocks = []
        for start in range(0, len(users), _BATCH):
            block = users[start : start + _BATCH]
            rows = None if exclude is None else exclude[block]
            blocks.append(top_n(self.scores(block), n, rows))
        return np.vstack(blocks) if blocks else np.empty((0, n), dtype=np.int64)


class Popularity(_Scorer):
    """The same list for everyone: items by how many users touched them."""

    name = "pop"

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.float32)

    @property
    def params(self) -> dict[str, Any]:
        """No hyper-parameters."""
        return {}

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Count distinct users per item."""
        self.counts = np.asarray(self._fit_matrix(log).sum(axis=0), dtype=np.float32).ravel()
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Every user gets the item counts."""
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))


class ItemKNN(_Scorer):
    """Item-based kNN as RecBole's ItemKNN: cosine with shrink, the k most similar kept.

    sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink); for each item only its `k`
    nearest neighbours vote, and a user's score for it is the sum of their votes.
    """

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0) -> None:
        self.k, self.shrink = k, shrink
        self.weights = sp.csr_matrix((0, 0))

    @property
    def params(self) -> dict[str, Any]:
        """Neighbours kept and shrink."""
        return {"k": self.k, "shrink": self.shrink}

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Build the sparse items × items neighbour matrix, column block by column block."""
        x = self._fit_matrix(log).tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        n_items, k = x.shape[1], min(self.k, max(x.shape[1] - 1, 1))
        rows, cols, vals = [], [], []
        for start in range(0, n_items, _BATCH):
            stop = min(start + _BATCH, n_items)
            block = (x.T @ x[:, start:stop]).toarray()
            block /= np.outer(norms, norms[start:stop]) + self.shrink + 1e-12
            block[np.arange(start, stop), np.arange(stop - start)] = 0.0  # no self-vote
            top = np.argpartition(-block, k - 1, axis=0)[:k]
            rows.append(top.ravel())
            cols.append(np.tile(np.arange(start, stop), k))
            vals.append(np.take_along_axis(block, top, axis=0).ravel())
        self.weights = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
            dtype=np.float32,
        )
        self.weights.eliminate_zeros()
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Sum of neighbour similarities over each user's items."""
        scores: np.ndarray = (self.x[users] @ self.weights).toarray()
        return scores


class EASE(_Scorer):
    """EASE (Steck 2019): a closed-form item-item linear model with L2 strength `lam`.

    Dense items × items: fine for catalogs of a few ten thousand items at most.
    """

    name = "ease"

    def __init__(self, lam: float = 250.0) -> None:
        self.lam = lam
        self.weights = np.zeros((0, 0), dtype=np.float32)

    @property
    def params(self) -> dict[str, Any]:
        """L2 regularization λ."""
        return {"lam": self.lam}

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """B = I - P / diag(P) with P = (XᵀX + λI)⁻¹, so B has a zero diagonal."""
        x = self._fit_matrix(log)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.lam
        p = np.linalg.inv(gram)
        weights = p / -np.diag(p)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights.astype(np.float32)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """X_u · B."""
        return np.asarray(self.x[users] @ self.weights)


class ALS(_Scorer):
    """implicit's AlternatingLeastSquares (Hu, Koren, Volinsky 2008) on the binary matrix.

    Confidence is 1 + alpha for a touched item; fitting runs with BLAS at one thread,
    as implicit asks (its own threads do the parallel work).
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.factors, self.regularization = factors, regularization
        self.iterations, self.alpha, self.seed = iterations, alpha, seed
        self.user_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_factors = np.zeros((0, factors), dtype=np.float32)

    @property
    def params(self) -> dict[str, Any]:
        """Factors, regularization, iterations and alpha."""
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "alpha": self.alpha,
        }

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Alternate least-squares solves for user and item factors."""
        self.user_factors, self.item_factors = fit_als(
            self._fit_matrix(log),
            factors=self.factors,
            regularization=self.regularization,
            iterations=self.iterations,
            alpha=self.alpha,
            seed=self.seed,
        )
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """User factor · item factor."""
        scores: np.ndarray = self.user_factors[users] @ self.item_factors.T
        return scores
