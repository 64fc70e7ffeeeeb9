"""Recent popularity: what everyone has been buying lately, decayed by age."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from recs.config import PipelineConfig
from recs.history import History
from recs.matrix import compact, in_rows
from recs.sources.base import extra_for


class Trending:
    """One global list by time-decayed event count; each user's excluded items removed."""

    name = "trend"

    def fit(self, history: History, config: PipelineConfig) -> Self:
        """Rank the items by decayed count (ties: lower item index first)."""
        self.value = np.log1p(history.item_decayed).astype(np.float32)
        touched = np.flatnonzero(history.item_decayed > 0)
        self.order = touched[np.argsort(-self.value[touched], kind="stable")]
        return self

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """The head of the global list, minus each user's excluded items."""
        head = self.order[: k + extra_for(exclude)]
        items = np.broadcast_to(head, (len(users), len(head)))
        scores = np.broadcast_to(self.value[head], items.shape)
        return compact(items, scores, ~in_rows(items, exclude), k)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The item's decayed popularity (the same for every user)."""
        popularity: np.ndarray = self.value[np.maximum(items, 0)]
        return popularity
