"""ALS embeddings (implicit) searched with Faiss: users find items near their taste."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recs.config import PipelineConfig
from recs.history import History
from recs.index import ItemIndex
from recs.matrix import compact, in_rows
from recs.sources.base import extra_for


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def mips_items(item_factors: np.ndarray) -> np.ndarray:
    """Item vectors with one extra coordinate that gives them all the same norm, then unit.

    Bachrach et al. (2014): with v' = (v, sqrt(M² − |v|²)) / M and a unit query (q, 0),
    cosine(q', v') = q·v / (|q| M), so nearest-by-cosine is exactly largest dot product,
    while every indexed vector has norm 1 (what HNSW needs for good recall).
    """
    vectors = np.asarray(item_factors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    top = float(norms.max()) if len(norms) else 0.0
    if top <= 0:
        return np.zeros((len(vectors), vectors.shape[1] + 1), np.float32)
    extra = np.sqrt(np.maximum(top**2 - norms**2, 0.0))[:, None]
    return np.ascontiguousarray(np.hstack([vectors, extra]) / top, dtype=np.float32)


def mips_queries(user_factors: np.ndarray) -> np.ndarray:
    """Unit user vectors with a zero extra coordinate, to search `mips_items` vectors."""
    users = _unit(np.asarray(user_factors, dtype=np.float32))
    return np.ascontiguousarray(np.hstack([users, np.zeros((len(users), 1), np.float32)]))


class AlsEmbedding:
    """Implicit-feedback ALS factors; retrieval by ALS preference (dot) through Faiss.

    The index holds `mips_items` vectors (equal norms), so an inner-product search over
    them ranks items exactly by the dot product, popularity included, as ALS itself would.
    """

    name = "als"

    def fit(self, history: History, config: PipelineConfig) -> Self:
        """Factorise the user × item weights (confidence 1 + alpha·w), then index the items."""
        from implicit.cpu.als import AlternatingLeastSquares

        # implicit's own threads do the work; a multi-threaded BLAS underneath only fights them.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=config.als_factors,
                regularization=config.als_regularization,
                iterations=config.als_iterations,
                alpha=config.als_alpha,
                random_state=config.seed,
                num_threads=config.threads or 0,
                calculate_training_loss=False,
            )
            model.fit(history.weights.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        # Only items someone touched have meaningful factors; the rest stay out of the index.
        known = np.flatnonzero(history.item_count > 0)
        threshold = 2**62 if config.exact_retrieval else config.hnsw_threshold
        self.index = ItemIndex(
            mips_items(self.item_factors[known]),
            known,
            hnsw_threshold=threshold,
            threads=config.threads,
        )
        return self

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items of highest ALS preference for all users in one Faiss search."""
        fetch = k + extra_for(exclude)
        sims, items = self.index.search(self.queries(users), fetch)
        valid = (items >= 0) & ~in_rows(items, exclude)
        return compact(items, sims, valid, k)

    def queries(self, users: np.ndarray) -> np.ndarray:
        """The search vectors of `users` for this source's index."""
        return mips_queries(self.user_factors[users])

    def index_vectors(self) -> np.ndarray:
        """The vectors the index holds, in `index.item_columns` order (for an exact twin)."""
        return mips_items(self.item_factors[self.index.item_columns])

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Raw ALS preference (dot product), which keeps the popularity that cosine drops."""
        u = self.user_factors[users]
        v = self.item_factors[np.maximum(items, 0)]
        return np.einsum("rf,rcf->rc", u, v).astype(np.float32)
