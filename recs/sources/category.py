"""Category affinity: the user's share of interest per category × that category's best items."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from recs.config import PipelineConfig
from recs.history import History
from recs.matrix import compact, dense_top_k, in_rows, lookup
from recs.sources.base import extra_for


class CategoryAffinity:
    """score(u, i) = share of u's interest in cat(i) × popularity of i scaled to [0, 1]."""

    name = "category"

    def fit(self, history: History, config: PipelineConfig) -> Self:
        """Keep each category's `category_top_items` most popular items as the pool."""
        # History has a category share exactly when the log has item categories.
        if history.category_share is None or history.log.item_category is None:
            raise ValueError("category affinity needs item categories")
        self.share = history.category_share
        self.item_category = history.log.item_category
        pop = np.log1p(history.item_decayed)
        self.pop = (pop / pop.max() if pop.max() > 0 else pop).astype(np.float32)
        touched = np.flatnonzero(history.item_count > 0)
        order = touched[np.lexsort((touched, -self.pop[touched], self.item_category[touched]))]
        cats = self.item_category[order]
        start = np.searchsorted(cats, cats, side="left")
        self.pool = order[np.arange(len(order)) - start < config.category_top_items]
        return self

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best pool items under each user's category mix."""
        share = self.share[users][:, self.item_category[self.pool]].toarray()
        scores = share * self.pop[self.pool]
        scores[scores <= 0] = -np.inf
        top, vals = dense_top_k(scores, k + extra_for(exclude))
        items = np.where(top >= 0, self.pool[np.maximum(top, 0)], -1)
        return compact(items, vals, (items >= 0) & ~in_rows(items, exclude), k)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Category share × scaled popularity of each pair."""
        safe = np.maximum(items, 0)
        rows = np.broadcast_to(users[:, None], items.shape).ravel()
        share = lookup(self.share, rows, self.item_category[safe].ravel()).reshape(items.shape)
        scores: np.ndarray = (share * self.pop[safe]).astype(np.float32)
        return scores
