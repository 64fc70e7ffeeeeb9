"""The interface every candidate source offers."""

from __future__ import annotations

from typing import Protocol, Self

import numpy as np
import scipy.sparse as sp

from recs.config import PipelineConfig
from recs.history import History


class Source(Protocol):
    """Batched candidate generation plus scoring of arbitrary (user, item) pairs.

    Optional, found by name (`recs.features`): `profile_score(profile, items)` scores a
    weighted item profile per row (the `<name>_recent` feature, from the user's latest
    events); `extra_names` and `extra_scores(users, items)` add columns `<name>_<extra>`
    of the source's own (e.g. the transitions' `trans_last`).
    """

    #: short name used in feature names and reasons
    name: str

    def fit(self, history: History, config: PipelineConfig) -> Self:
        """Learn from `history` (events before its `now` only)."""
        ...

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best `k` items per user: (items, scores), each len(users) × k, best first.

        `exclude` has one row per user; its nonzero items are never proposed. Slots that
        cannot be filled hold item -1 and score -inf.
        """
        ...

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """This source's score for each (users[r], items[r, c]) pair; items may hold -1."""
        ...


def extra_for(exclude: sp.csr_matrix) -> int:
    """How many more items to fetch so excluding a row's items still leaves k."""
    return int(np.diff(exclude.indptr).max()) if exclude.shape[0] else 0
