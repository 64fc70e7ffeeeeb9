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


class AlsEmbedding:
    """Implicit-feedback ALS factors; retrieval by cosine through Faiss, pair score = dot."""

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
            _unit(self.item_factors[known]), known, hnsw_threshold=threshold, threads=config.threads
        )
        return self

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by cosine for all users in one Faiss search."""
        fetch = k + extra_for(exclude)
        sims, items = self.index.search(_unit(self.user_factors[users]), fetch)
        valid = (items >= 0) & ~in_rows(items, exclude)
        return compact(items, sims, valid, k)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Raw ALS preference (dot product), which keeps the popularity that cosine drops."""
        u = self.user_factors[users]
        v = self.item_factors[np.maximum(items, 0)]
        return np.einsum("rf,rcf->rc", u, v).astype(np.float32)
