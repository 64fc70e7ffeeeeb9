"""What the event log says as of one moment: the matrices and statistics sources and features read.

A `History` is built from events strictly before its `now`; the ranker is trained on a
History at a cutoff and served from a History of the whole training log, so nothing after
the moment being modelled can leak in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recs.config import PipelineConfig
from recs.dataset import KIND_CODES, InteractionLog
from recs.matrix import SECONDS_PER_DAY, interaction_matrix, last_time_matrix, row_normalize
from retail.types import EventType

VIEW, CART, PURCHASE = (KIND_CODES[k] for k in (EventType.view, EventType.cart, EventType.purchase))


@dataclass(frozen=True, eq=False)
class History:
    """Per-user, per-item and per-category facts from the events before `now`."""

    log: InteractionLog
    now: float
    #: users × items: kind-weighted (and optionally decayed) interest
    weights: sp.csr_matrix
    #: users × items: 1 where the user had any event with the item
    seen: sp.csr_matrix
    #: users × items: 1 where the user bought the item
    purchased: sp.csr_matrix
    #: users × items: latest event time of the pair (0 = never)
    last_item_time: sp.csr_matrix
    #: users × items: view and cart counts (None when the log has only one kind)
    views: sp.csr_matrix | None
    carts: sp.csr_matrix | None
    #: users × categories: share of the user's interest, and latest event time
    category_share: sp.csr_matrix | None
    last_category_time: sp.csr_matrix | None
    #: per item: event count, decayed count, trend (recent rate / baseline rate)
    item_count: np.ndarray
    item_decayed: np.ndarray
    item_trend: np.ndarray
    #: per user: number of events
    user_count: np.ndarray
    #: per user: mean and spread of log price over the items they touched (None: no prices)
    price_mean: np.ndarray | None
    price_std: np.ndarray | None
    #: users × items: the user's latest events, weight halving every `recent_half_life`
    #: events counted back from the user's last one (what they are into right now)
    recent: sp.csr_matrix

    @property
    def n_users(self) -> int:
        """Users in the id space."""
        return self.log.n_users

    @property
    def n_items(self) -> int:
        """Items in the id space."""
        return self.log.n_items


def build_history(log: InteractionLog, *, now: float, config: PipelineConfig) -> History:
    """Everything the sources and features need, from the events of `log` before `now`."""
    log = log.subset(log.time < now)
    shape = (log.n_users, log.n_items)
    weights = interaction_matrix(
        log, now=now, kind_weights=config.kind_weights, half_life_days=config.half_life_days
    )
    if weights.nnz == 0 and len(log.user):
        # A log of kinds the weights ignore still says who touched what.
        weights = interaction_matrix(log, now=now, binary=True)
    seen = interaction_matrix(log, now=now, binary=True)
    bought = log.kind == PURCHASE
    purchased = interaction_matrix(log.subset(bought), now=now, binary=True)
    last_item = last_time_matrix(log.user, log.item, log.time, shape)
    kinds = np.unique(log.kind)
    views = carts = None
    if len(kinds) > 1:
        views = interaction_matrix(log.subset(log.kind == VIEW), now=now)
        carts = interaction_matrix(log.subset(log.kind == CART), now=now)

    category_share = last_category = None
    if log.item_category is not None and len(log.categories):
        n_cat = len(log.categories)
        item_cat = log.item_category
        to_category = sp.csr_matrix(
            (np.ones(log.n_items, np.float32), (np.arange(log.n_items), item_cat)),
            shape=(log.n_items, n_cat),
        )
        category_share = row_normalize(weights @ to_category).tocsr()
        last_category = last_time_matrix(
            log.user, item_cat[log.item], log.time, (log.n_users, n_cat)
        )

    age_days = (now - log.time) / SECONDS_PER_DAY
    item_count = np.bincount(log.item, minlength=log.n_items).astype(np.float64)
    decay = np.exp2(-age_days / config.trend_half_life_days)
    item_decayed = np.bincount(log.item, weights=decay, minlength=log.n_items)
    recent = np.bincount(
        log.item, weights=age_days < config.trend_recent_days, minlength=log.n_items
    )
    baseline_mask = (age_days >= config.trend_recent_days) & (
        age_days < config.trend_recent_days + config.trend_baseline_days
    )
    baseline = np.bincount(log.item, weights=baseline_mask, minlength=log.n_items)
    # Rates per day, smoothed by one event so a first sale is not an infinite trend.
    item_trend = ((recent + 1) / config.trend_recent_days) / (
        (baseline + 1) / config.trend_baseline_days
    )
    user_count = np.bincount(log.user, minlength=log.n_users).astype(np.float64)

    price_mean = price_std = None
    if log.item_price is not None:
        logp = np.log1p(np.maximum(log.item_price, 0.0))[log.item]
        n = np.maximum(user_count, 1)
        price_mean = np.bincount(log.user, weights=logp, minlength=log.n_users) / n
        square = np.bincount(log.user, weights=logp**2, minlength=log.n_users) / n
        price_std = np.sqrt(np.maximum(square - price_mean**2, 0.0)) + 0.1
    return History(
        log=log,
        now=now,
        weights=weights,
        seen=seen,
        purchased=purchased,
        last_item_time=last_item,
        views=views,
        carts=carts,
        category_share=category_share,
        last_category_time=last_category,
        item_count=item_count,
        item_decayed=item_decayed,
        item_trend=item_trend,
        user_count=user_count,
        price_mean=price_mean,
        price_std=price_std,
        recent=_recent(log, config.recent_half_life),
    )


def _recent(log: InteractionLog, half_life: float) -> sp.csr_matrix:
    """Users × items: each event weighs 2^(−b / half_life), b = how many of the user's
    events came after it (0 = the latest; equal times keep the log's order)."""
    n = len(log.user)
    order = np.lexsort((np.arange(n), log.time, log.user))
    ends = np.cumsum(np.bincount(log.user, minlength=log.n_users))
    back = np.empty(n, dtype=np.float64)
    back[order] = ends[log.user[order]] - 1 - np.arange(n)
    # Past six half-lives (weight < 1/64) an event no longer counts: keeps the rows short.
    keep = back < 6 * half_life
    recent = sp.csr_matrix(
        (np.exp2(-back[keep] / half_life), (log.user[keep], log.item[keep])),
        shape=(log.n_users, log.n_items),
    )
    recent.sum_duplicates()
    return recent.astype(np.float32)
