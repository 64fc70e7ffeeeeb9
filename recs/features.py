"""The union of all sources' candidates, and the ranker's features for every (user, item) pair.

Layout: users × slots (padded with item -1) × features, so one user's candidates are one
LightGBM query group. Features a dataset cannot supply (prices, kinds, categories) are not
columns at all; facts missing for one pair (the user never touched the item) are NaN,
which LightGBM treats as its own branch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recs.history import History
from recs.matrix import SECONDS_PER_DAY, lookup
from recs.sources.base import Source

#: rank given to an item a source did not propose (its lists hold at most a few hundred)
NOT_RETRIEVED = 1_000


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """Deduplicated candidates of a batch of users: which sources proposed each, at what rank."""

    users: np.ndarray  # (U,)
    items: np.ndarray  # (U, M), -1 padded, ascending item index per row
    ranks: np.ndarray  # (S, U, M) int32, NOT_RETRIEVED when source s did not propose it

    @property
    def valid(self) -> np.ndarray:
        """Which slots hold an item."""
        return self.items >= 0

    def source_mask(self) -> np.ndarray:
        """(U, M) bit s set when source s proposed the item."""
        bits = np.zeros(self.items.shape, dtype=np.int64)
        for s, rank in enumerate(self.ranks):
            bits |= (rank < NOT_RETRIEVED).astype(np.int64) << s
        return bits


def candidate_union(users: np.ndarray, lists: Sequence[np.ndarray], n_items: int) -> CandidateSet:
    """Merge each source's (U × k_s) item lists into one padded, duplicate-free list per user."""
    n_users = len(users)
    blocks = [np.asarray(items, dtype=np.int64) for items in lists]
    allitems = np.concatenate(blocks, axis=1) if blocks else np.empty((n_users, 0), np.int64)
    rows = np.broadcast_to(np.arange(n_users)[:, None], allitems.shape)
    present = allitems >= 0
    keys = rows[present] * n_items + allitems[present]
    unique, inverse = np.unique(keys, return_inverse=True)
    pair_row = unique // n_items
    starts = np.searchsorted(pair_row, np.arange(n_users))
    slot = np.arange(len(unique)) - starts[pair_row]
    width = int(slot.max()) + 1 if len(slot) else 0
    items = np.full((n_users, width), -1, dtype=np.int64)
    items[pair_row, slot] = unique % n_items
    ranks = np.full((len(blocks), n_users, width), NOT_RETRIEVED, dtype=np.int32)
    offset = 0
    entry_slot = slot[inverse]
    entry_row = rows[present]
    entry_col = np.broadcast_to(np.arange(allitems.shape[1]), allitems.shape)[present]
    for s, block in enumerate(blocks):
        mine = (entry_col >= offset) & (entry_col < offset + block.shape[1])
        ranks[s, entry_row[mine], entry_slot[mine]] = entry_col[mine] - offset
        offset += block.shape[1]
    return CandidateSet(users=np.asarray(users), items=items, ranks=ranks)


def feature_names(history: History, sources: Sequence[Source]) -> tuple[str, ...]:
    """Column names, in order, for this history's dataset and these sources."""
    names = [f"{s.name}_score" for s in sources] + [f"{s.name}_rank" for s in sources]
    names += [f"{s.name}_recent" for s in sources if hasattr(s, "profile_score")]
    names += [f"{s.name}_{n}" for s in sources for n in getattr(s, "extra_names", ())]
    names += ["n_sources", "item_pop", "item_recent", "item_trend", "user_activity"]
    names += ["recency_item"]
    if history.category_share is not None:
        names += ["cat_affinity", "recency_cat"]
    if history.price_mean is not None:
        names += ["price_band"]
    if history.views is not None:
        names += ["viewed", "carted"]
    return tuple(names)


def features(history: History, sources: Sequence[Source], cands: CandidateSet) -> np.ndarray:
    """(U, M, F) float32 features for `cands`, columns as in `feature_names`.

    Reads only `history`, i.e. events before its `now`.
    """
    users, items = cands.users, cands.items
    safe = np.maximum(items, 0)
    flat_users = np.broadcast_to(users[:, None], items.shape).ravel()
    cols: list[np.ndarray] = [s.score(users, items) for s in sources]
    cols += list(cands.ranks.astype(np.float32))
    # What the user is into right now: the same item-item models over their latest events.
    recent = history.recent[users]
    cols += [s.profile_score(recent, items) for s in sources if hasattr(s, "profile_score")]
    # Source-specific columns, e.g. what usually comes right after the user's last item.
    cols += [c for s in sources if hasattr(s, "extra_scores") for c in s.extra_scores(users, items)]
    cols.append((cands.ranks < NOT_RETRIEVED).sum(axis=0))
    cols.append(np.log1p(history.item_count)[safe])
    cols.append(np.log1p(history.item_decayed)[safe])
    cols.append(np.log(history.item_trend)[safe])
    cols.append(np.broadcast_to(np.log1p(history.user_count[users])[:, None], items.shape))

    def days_since(matrix: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
        last = lookup(matrix, flat_users, columns.ravel()).reshape(items.shape)
        return np.where(last > 0, (history.now - last) / SECONDS_PER_DAY, np.nan)

    cols.append(days_since(history.last_item_time, safe))
    if history.category_share is not None:
        # build_history sets the category share, its times and the item categories together.
        assert history.log.item_category is not None
        assert history.last_category_time is not None
        category = history.log.item_category[safe]
        share = lookup(history.category_share, flat_users, category.ravel())
        cols.append(share.reshape(items.shape))
        cols.append(days_since(history.last_category_time, category))
    if history.price_mean is not None:
        # ... and the price mean, its spread and the item prices.
        assert history.log.item_price is not None and history.price_std is not None
        price = np.log1p(np.maximum(history.log.item_price, 0.0))[safe]
        active = history.user_count[users] > 0
        band = (price - history.price_mean[users][:, None]) / history.price_std[users][:, None]
        cols.append(np.where(active[:, None], band, np.nan))
    if history.views is not None:
        for matrix in (history.views, history.carts):
            cols.append(lookup(matrix, flat_users, safe.ravel()).reshape(items.shape))
    return np.stack([np.asarray(c, dtype=np.float32) for c in cols], axis=-1)
