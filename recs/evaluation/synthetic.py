"""Large synthetic interaction logs with planted taste, built with numpy alone.

For the speed bench (50,000 items × 100,000 customers) and for tiny logs in tests whose
right answer is known: each user favours one cluster of items (its category), and inside
it, lower-ranked items are more popular.
"""

from __future__ import annotations

import numpy as np

from recs.dataset import InteractionLog

_DAYS = 90


def planted_log(
    n_users: int,
    n_items: int,
    *,
    n_clusters: int = 50,
    events_per_user: float = 20.0,
    loyalty: float = 0.85,
    seed: int = 0,
) -> InteractionLog:
    """A log where user u mostly touches items of cluster `u % n_clusters`.

    Item j is in cluster `j % n_clusters` (its category); a `loyalty` share of a user's
    events fall in their cluster, the rest anywhere; popularity inside a cluster is
    Zipf-like. Kinds are 70 % views, 20 % carts, 10 % purchases; times span 90 days.
    All item facts (category, brand, price, stock, text) are filled, as a retailer's are.
    """
    rng = np.random.default_rng(seed)
    counts = rng.poisson(events_per_user, n_users) + 1
    user = np.repeat(np.arange(n_users), counts).astype(np.int32)
    per_cluster = -(-n_items // n_clusters)
    # Zipf-like rank inside a cluster: a few heads, a long tail.
    # (the rare tail past the cluster's size wraps round, spreading it thinly over all)
    rank = (rng.pareto(1.1, len(user)) * 8).astype(np.int64) % per_cluster
    own = (user % n_clusters).astype(np.int64)
    anywhere = rng.integers(0, n_clusters, len(user))
    cluster = np.where(rng.random(len(user)) < loyalty, own, anywhere)
    item = cluster + n_clusters * rank
    item = np.where(item < n_items, item, cluster).astype(np.int32)
    time = np.sort(rng.uniform(0, _DAYS * 86_400.0, len(user)))
    order = rng.permutation(len(user))  # interleave users over time
    kind = rng.choice(np.array([0, 1, 2], dtype=np.int8), len(user), p=[0.7, 0.2, 0.1])
    return InteractionLog(
        user_ids=tuple(f"U{u:07d}" for u in range(n_users)),
        item_ids=tuple(f"I{j:07d}" for j in range(n_items)),
        user=user[order],
        item=item[order],
        kind=kind,
        time=time,
        item_category=(np.arange(n_items) % n_clusters).astype(np.int32),
        categories=tuple(f"cat-{c}" for c in range(n_clusters)),
        item_brand=(np.arange(n_items) % 7).astype(np.int32),
        brands=tuple(f"brand-{b}" for b in range(7)),
        item_price=np.round(rng.lognormal(3.5, 0.6, n_items), 2),
        item_in_stock=rng.random(n_items) > 0.02,
        item_text=tuple(f"item {j} cat-{j % n_clusters}" for j in range(n_items)),
    )
