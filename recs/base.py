"""The one interface every recommender here offers: baselines, and the reelcast pipeline."""

from __future__ import annotations

from typing import Protocol, Self

import numpy as np
import scipy.sparse as sp

from recs.dataset import InteractionLog


class Recommender(Protocol):
    """Batch in, arrays out (the shape of `implicit`)."""

    #: short name for tables: "pop", "itemknn", "ease", "als", "reelcast"
    name: str

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Learn from the events in `log` (all before `now`, seconds since the epoch)."""
        ...

    def recommend_indices(
        self, users: np.ndarray, n: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-`n` item indices per user, best first, shape (len(users), n), -1 padded.

        `exclude` (users × items over the whole user space, nonzero = never recommend)
        carries the evaluation's seen-item filter or the business rules' exclusions.
        """
        ...
