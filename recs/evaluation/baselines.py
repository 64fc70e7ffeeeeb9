"""Single-model baselines behind the `Recommender` protocol: popularity, item-kNN, EASE, ALS.

Each learns from "who touched what" (a binary users × items matrix; event kinds and
times are ignored, as in RecBole's general recommenders) and scores users in batches.
The sequential baselines, which do use time, are in `recs.evaluation.sequential`.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recs.dataset import InteractionLog
from recs.evaluation.protocols import interaction_matrix
from recs.sources.embedding import fit_als

# Users scored per block: at most this many, and at most _BLOCK_CELLS scores per block,
# so a 50,000-item catalog is scored 400 users at a time (80 MB of float32 scores, and
# top_n's temporaries a few times that) rather than 1024 (a gigabyte with temporaries).
_BATCH = 1024
_BLOCK_CELLS = 20_000_000


def block_users(n_items: int) -> int:
    """How many users to score at once for a catalog of `n_items`."""
    return int(max(16, min(_BATCH, _BLOCK_CELLS // max(n_items, 1))))


def top_k_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The `k` largest stored entries of each row (ties to the lower column), the rest dropped."""
    matrix = sp.csr_matrix(matrix)
    matrix.sum_duplicates()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    keep = order[rank < k]
    return sp.csr_matrix(
        (matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape
    )


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
        step = block_users(self.x.shape[1])
        for start in range(0, len(users), step):
            block = users[start : start + step]
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
        """Build the sparse items × items neighbour matrix from the sparse co-counts.

        Only item pairs some user shares are stored, so the cost follows the events, not
        items²: 50,000 items with 150,000 events is a few million pairs.
        """
        x = self._fit_matrix(log)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        co = (x.T @ x).tocsr()  # symmetric: row j holds column j
        co.setdiag(0.0)
        co.eliminate_zeros()
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        co.data = co.data / (norms[rows] * norms[co.indices] + self.shrink + 1e-12)
        # Row j of `co` is item j's similarity to every other item: keep its k nearest,
        # then transpose so that column j holds the votes for item j (scores = x_u · W).
        self.weights = top_k_per_row(co, self.k).T.tocsr().astype(np.float32)
        self.weights.eliminate_zeros()
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Sum of neighbour similarities over each user's items."""
        scores: np.ndarray = (self.x[users] @ self.weights).toarray()
        return scores


class EASE(_Scorer):
    """EASE (Steck 2019): a closed-form item-item linear model with L2 strength `lam`.

    Dense items × items: n items need 24·n² bytes at the inverse (1.5 GB at 8,000) and
    O(n³) time. `max_items` approximates past that: the model is fitted on the
    `max_items` items most users touched, and the others score nothing.
    """

    name = "ease"

    def __init__(self, lam: float = 250.0, max_items: int | None = None) -> None:
        self.lam, self.max_items = lam, max_items
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.columns = np.zeros(0, dtype=np.int64)

    @property
    def params(self) -> dict[str, Any]:
        """L2 regularization λ."""
        return {"lam": self.lam}

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """B = I - P / diag(P) with P = (XᵀX + λI)⁻¹, so B has a zero diagonal."""
        x = self._fit_matrix(log)
        columns = np.arange(x.shape[1])
        if self.max_items is not None and x.shape[1] > self.max_items:
            counts = np.asarray(x.sum(axis=0)).ravel()
            columns = np.sort(np.argsort(-counts, kind="stable")[: self.max_items])
        self.columns = columns
        part = x[:, columns].tocsc()
        gram = (part.T @ part).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.lam
        # numpy's inverse, not scipy's LAPACK: two OpenBLAS builds in one process spin
        # against each other on a small machine (scipy's Cholesky ran 10× slower after it).
        p = np.linalg.inv(gram)
        del gram
        p /= -np.diag(p)  # column j divided by -P_jj: B = -P · diag(1 / P_jj)
        p[np.diag_indices_from(p)] = 0.0
        self.weights = p.astype(np.float32)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """X_u · B (items outside the fitted ones score 0)."""
        if len(self.columns) == self.x.shape[1]:
            return np.asarray(self.x[users] @ self.weights)
        scores = np.zeros((len(users), self.x.shape[1]), dtype=np.float32)
        scores[:, self.columns] = self.x[users][:, self.columns] @ self.weights
        return scores


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
