"""Item-to-next-item transitions: what people had next after the items this user had last.

A first-order Markov chain over each user's time-ordered items (consecutive repeats of
one item, e.g. its view, cart and purchase, count once): P(j | i) = n(i → j) /
(n(i → ·) + shrink), kept sparse and pruned to the `transition_neighbours` most likely
next items of each item, so memory grows with the events, not with items². A user's
score for j weighs P(j | i) over their latest `transition_window` items, halving per step
back; `last_score` is P(j | the user's last item) alone.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from recs.config import PipelineConfig
from recs.dataset import InteractionLog
from recs.history import History
from recs.matrix import compact, dense_top_k, in_rows, lookup, sparse_top_k
from recs.sources.base import extra_for

# Item rows per block when pruning the transition matrix: bounds memory on big catalogs.
_BLOCK = 8_192


def item_sequences(log: InteractionLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, steps back) of each user's time-ordered items, users in index order.

    Equal times keep the log's order. Consecutive repeats of an item by one user count
    once; `steps back` is 0 for the user's latest item, 1 for the one before, and so on.
    """
    order = np.lexsort((np.arange(len(log.user)), log.time, log.user))
    user, item = log.user[order].astype(np.int64), log.item[order].astype(np.int64)
    if len(user):
        fresh = np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1])]
        user, item = user[fresh], item[fresh]
    ends = np.cumsum(np.bincount(user, minlength=log.n_users))
    back = ends[user] - 1 - np.arange(len(user))
    return user, item, back


def transition_matrix(
    user: np.ndarray, item: np.ndarray, n_items: int, *, shrink: float, neighbours: int | None
) -> sp.csr_matrix:
    """Items × items P(j | i) from sequences (grouped by user, in time order), the top
    `neighbours` per row (None: every next item)."""
    step = user[1:] == user[:-1]
    counts = sp.csr_matrix(
        (np.ones(int(step.sum()), np.float32), (item[:-1][step], item[1:][step])),
        shape=(n_items, n_items),
    )
    counts.sum_duplicates()
    out = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    scale = (1.0 / np.maximum(out + shrink, 1e-12)).astype(np.float32)
    probabilities = sp.diags(scale) @ counts
    if neighbours is None:
        return probabilities.tocsr().astype(np.float32)
    blocks = []
    for start in range(0, n_items, _BLOCK):
        block = probabilities[start : start + _BLOCK]
        cols, vals = sparse_top_k(block, neighbours)
        r, c = np.nonzero(cols >= 0)
        blocks.append(sp.csr_matrix((vals[r, c], (r, cols[r, c])), shape=block.shape))
    if not blocks:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.vstack(blocks).tocsr().astype(np.float32)


def latest_items(
    user: np.ndarray, item: np.ndarray, back: np.ndarray, shape: tuple[int, int], window: int
) -> sp.csr_matrix:
    """Users × items: 2^-(steps back) for each user's latest `window` items (an item seen
    twice keeps its latest, largest weight)."""
    keep = back < window
    user, item, weight = user[keep], item[keep], np.exp2(-back[keep].astype(np.float64))
    key = user * shape[1] + item
    order = np.lexsort((-weight, key))
    first = np.r_[True, key[order][1:] != key[order][:-1]] if len(key) else np.empty(0, bool)
    pick = order[first]
    return sp.csr_matrix((weight[pick], (user[pick], item[pick])), shape=shape, dtype=np.float32)


class Transition:
    """First-order item → next item transitions, scored from the user's latest items.

    Besides its score (the latest `transition_window` items, halving per step back) the
    ranker gets `trans_last`, P(item | the user's last item), and, when items have
    categories, `trans_cat_last`, P(category of the item | category of the user's last
    item) from the same steps counted between categories: where the item-level counts
    are thin (a big catalog, a new item), the category still says where users go next.
    """

    name = "trans"

    def fit(self, history: History, config: PipelineConfig) -> Self:
        """Count the transitions in `history`'s events; remember each user's latest items."""
        log = history.log
        user, item, back = item_sequences(log)
        self.transitions = transition_matrix(
            user,
            item,
            log.n_items,
            shrink=config.transition_shrink,
            neighbours=config.transition_neighbours,
        )
        shape = (log.n_users, log.n_items)
        self.state = latest_items(user, item, back, shape, config.transition_window)
        self.last = latest_items(user, item, back, shape, 1)
        self.item_category = log.item_category if len(log.categories) else None
        self.category_transitions: sp.csr_matrix | None = None
        self.last_category = np.full(log.n_users, -1, dtype=np.int64)
        if self.item_category is not None:
            category = self.item_category.astype(np.int64)
            # Categories are few, but a taxonomy may hold thousands: kept sparse too.
            self.category_transitions = transition_matrix(
                user,
                category[item],
                len(log.categories),
                shrink=config.transition_shrink,
                neighbours=len(log.categories),
            )
            self.last_category[user[back == 0]] = category[item[back == 0]]
        return self

    @property
    def extra_names(self) -> tuple[str, ...]:
        """Names (after `trans_`) of the columns `extra_scores` adds to the ranker's features."""
        return ("last", "cat_last") if self.category_transitions is not None else ("last",)

    def extra_scores(self, users: np.ndarray, items: np.ndarray) -> list[np.ndarray]:
        """`last_score`, and P(item's category | last item's category) (NaN: no last item)."""
        columns = [self.last_score(users, items)]
        if self.category_transitions is not None and self.item_category is not None:
            last = np.broadcast_to(self.last_category[users][:, None], items.shape)
            category = self.item_category[np.maximum(items, 0)]
            p = lookup(self.category_transitions, np.maximum(last, 0).ravel(), category.ravel())
            columns.append(np.where(last >= 0, p.reshape(items.shape), np.nan).astype(np.float32))
        return columns

    def _scores(self, state: sp.csr_matrix) -> sp.csr_matrix:
        return (state @ self.transitions).tocsr()

    def candidates(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        """The likeliest next items after the user's latest ones."""
        scores = self._scores(self.state[users])
        if scores.shape[1] <= 4_096:
            dense = scores.toarray()
            dense[dense <= 0] = -np.inf
            items, vals = dense_top_k(dense, k + extra_for(exclude))
        else:
            items, vals = sparse_top_k(scores, k + extra_for(exclude))
        valid = (items >= 0) & ~in_rows(items, exclude)
        return compact(items, vals, valid, k)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Transition score from the user's latest items, halving per step back."""
        return _pairs(self._scores(self.state[users]), items)

    def last_score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(item | the user's last item)."""
        return _pairs(self._scores(self.last[users]), items)

    def profile_score(self, profile: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """Transition score from a weighted item profile per row (e.g. recent events)."""
        return _pairs(self._scores(profile), items)


def _pairs(scores: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    rows = np.broadcast_to(np.arange(items.shape[0])[:, None], items.shape)
    values = lookup(scores, rows.ravel(), np.maximum(items, 0).ravel()).reshape(items.shape)
    return np.where(items >= 0, values, 0.0).astype(np.float32)
