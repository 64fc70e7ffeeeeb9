"""Baselines that know about time: what a user did last predicts what they do next.

- `Markov`: first-order item-to-next-item transitions ("people who had X next had Y"),
  scored from the user's last item, optionally blended with a few items before it.
- `SequenceKNN`: users with similar histories vote for their items; the user's own
  history is weighted by recency (V-SkNN, Ludewig & Jannach 2018, over whole histories:
  a user's history is one long session).

Both see each user's events in time order (the log's order for equal times), with
consecutive repeats of one item (view, cart, purchase of the same product) collapsed.
Items neither model can score are ranked by popularity after the ones it can, so every
list is full.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recs.dataset import InteractionLog
from recs.evaluation.baselines import _Scorer, top_k_per_row

# The pipeline's transition source reads sequences and counts transitions the same way.
from recs.sources.transition import item_sequences as sequences
from recs.sources.transition import transition_matrix


def recency_profile(
    log: InteractionLog, half_life: float | None, window: int | None = None
) -> sp.csr_matrix:
    """Users × items: 0.5 ** (steps back / half_life) at each item's latest position.

    `window` keeps only the latest `window` positions; half_life None weighs all equally.
    An item seen several times keeps its most recent (largest) weight.
    """
    user, item, back = sequences(log)
    keep = back < window if window is not None else np.ones(len(back), dtype=bool)
    user, item, back = user[keep], item[keep], back[keep]
    weight = np.ones(len(back)) if half_life is None else np.exp2(-back / half_life)
    # One entry per (user, item): its largest weight (a sparse constructor would sum them).
    key = user * log.n_items + item
    order = np.lexsort((-weight, key))
    first = np.r_[True, key[order][1:] != key[order][:-1]] if len(key) else np.empty(0, bool)
    pick = order[first]
    return sp.csr_matrix((weight[pick], (user[pick], item[pick])), shape=(log.n_users, log.n_items))


def _popularity_fill(scores: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Items with no positive score go after all others, by popularity (`rank` in [0, 1))."""
    filled: np.ndarray = np.where(scores > 0, scores, rank[None, :] - 1.0).astype(np.float32)
    return filled


def _popularity_rank(x: sp.csr_matrix) -> np.ndarray:
    """Per item, its user count scaled into [0, 1): more users, higher."""
    counts = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
    rank: np.ndarray = counts / (counts.max(initial=0.0) + 1.0)
    return rank


class Markov(_Scorer):
    """First-order Markov chain over items: P(next = j | last = i), learned from sequences.

    P(j | i) = n(i → j) / (n(i → ·) + shrink), where n(i → j) counts users' consecutive
    steps from i to j. A user's score for j is Σ over their latest `window` items i of
    0.5 ** (steps back) · P(j | i): `window` 1 is the pure "last item" model.
    """

    name = "markov"

    def __init__(self, window: int = 1, shrink: float = 0.0) -> None:
        self.window, self.shrink = window, shrink
        self.transitions = sp.csr_matrix((0, 0), dtype=np.float32)
        self.state = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.zeros(0)

    @property
    def params(self) -> dict[str, Any]:
        """Items that vote and the transition shrink."""
        return {"window": self.window, "shrink": self.shrink}

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Count transitions, normalise each row, remember each user's latest items."""
        x = self._fit_matrix(log)
        user, item, _ = sequences(log)
        self.transitions = transition_matrix(
            user, item, log.n_items, shrink=self.shrink, neighbours=None
        )
        self.state = recency_profile(log, 1.0, self.window).astype(np.float32)
        self.popularity = _popularity_rank(x)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Transition probabilities from the user's latest items, popularity after."""
        dense = (self.state[users] @ self.transitions).toarray()
        return _popularity_fill(dense, self.popularity)


class SequenceKNN(_Scorer):
    """Users whose histories resemble this user's recent one vote for their items.

    The user's history weighs 0.5 ** (steps back / half_life) per item (recent items
    count most; half_life None: all alike). sim(u, v) = Σ_i w_u(i)·[v has i] /
    (‖w_u‖·sqrt(|v|)); the `k` most similar users vote with their similarity for each of
    their items.
    """

    name = "sknn"

    def __init__(self, k: int = 100, half_life: float | None = 5.0) -> None:
        self.k, self.half_life = k, half_life
        self.query = sp.csr_matrix((0, 0), dtype=np.float32)
        self.neighbours_t = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.zeros(0)

    @property
    def params(self) -> dict[str, Any]:
        """Neighbours and the recency half-life (in events)."""
        return {"k": self.k, "half_life": self.half_life}

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Decayed query profiles, and every user's items as a neighbour, normalised."""
        x = self._fit_matrix(log)
        query = recency_profile(log, self.half_life)
        norms = np.sqrt(np.asarray(query.multiply(query).sum(axis=1)).ravel())
        self.query = (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ query).tocsr()
        sizes = np.asarray(x.sum(axis=1)).ravel()
        self.neighbours_t = (x.T @ sp.diags(1.0 / np.sqrt(np.maximum(sizes, 1.0)))).tocsr()
        self.popularity = _popularity_rank(x)
        return self

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Σ over the k nearest users of similarity × their items, popularity after."""
        similarity = (self.query[users] @ self.neighbours_t).tocsr()  # block × users
        # No one is their own neighbour.
        rows = np.repeat(np.arange(len(users)), np.diff(similarity.indptr))
        similarity.data[similarity.indices == users[rows]] = 0.0
        similarity.eliminate_zeros()
        nearest = top_k_per_row(similarity, self.k)
        nearest.eliminate_zeros()
        dense = (nearest @ self.x).toarray()
        return _popularity_fill(dense, self.popularity)
