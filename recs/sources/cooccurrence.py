"""Item-to-item co-occurrence: items bought together with the user's items (item-kNN)."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from recs.config import PipelineConfig
from recs.history import History
from recs.matrix import compact, dense_top_k, in_rows, lookup, sparse_top_k
from recs.sources.base import extra_for

# Item rows per block when building the similarity matrix: bounds memory on big catalogs.
_BLOCK = 2_048


class CoOccurrence:
    """Cosine similarity with shrinkage between item columns, pruned to top neighbours."""

    name = "cooc"

    def fit(self, history: History, config: PipelineConfig) -> Self:
        """S[i, j] = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink), top `cooc_neighbours` per i."""
        seen = history.seen.tocsc().astype(np.float32)
        counts = np.asarray(seen.sum(axis=0)).ravel()
        root = np.sqrt(counts)
        n_items = seen.shape[1]
        seen_t = seen.T.tocsr()
        blocks = []
        for start in range(0, n_items, _BLOCK):
            stop = min(start + _BLOCK, n_items)
            co = (seen_t[start:stop] @ seen).tocoo()
            keep = co.row + start != co.col
            data = co.data[keep] / (
                root[co.row[keep] + start] * root[co.col[keep]] + config.cooc_shrink
            )
            block = sp.csr_matrix(
                (data, (co.row[keep], co.col[keep])), shape=(stop - start, n_items)
            )
            cols, vals = sparse_top_k(block, config.cooc_neighbours)
            r, c = np.nonzero(cols >= 0)
            blocks.append(sp.csr_matrix((vals[r, c], (r, cols[r, c])), shape=block.shape))
        self.similarity = (
            sp.vstack(blocks).tocsr()
            if blocks
            else sp.csr_matrix((n_items, n_items), dtype=np.float32)
        )
        self.profile = history.seen
        return self

    def _scores(self, users: np.ndarray) -> sp.csr_matrix:
        return (self.profile[users] @ self.similarity).tocsr()

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to the user's items, summed over the history."""
        scores = self._scores(users)
        if scores.shape[1] <= 4_096:
            dense = scores.toarray()
            dense[dense == 0] = -np.inf
            items, vals = dense_top_k(dense, k + extra_for(exclude))
        else:
            items, vals = sparse_top_k(scores, k + extra_for(exclude))
        valid = (items >= 0) & ~in_rows(items, exclude)
        return compact(items, vals, valid, k)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Summed similarity of each item to the user's history."""
        return self._pairs(self._scores(users), users, items)

    def profile_score(self, profile: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """Similarity of each item to a weighted item profile per row (e.g. recent items)."""
        return self._pairs((profile @ self.similarity).tocsr(), np.arange(len(items)), items)

    @staticmethod
    def _pairs(scores: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        rows = np.broadcast_to(np.arange(len(users))[:, None], items.shape)
        return lookup(scores, rows.ravel(), np.maximum(items, 0).ravel()).reshape(items.shape)
