"""Synthetic data with planted taste: data whose right answer is known.

- `synthetic_shop`: a catalog and event log as a retailer's files give them. Each customer
  favours one category and, inside it, one style; within that, better-selling products
  are chosen more often. Tests use it to check the recommender finds the planted
  structure. Not demo data: the demo retailer lives in `retail/`.
- `planted_log`: a large interaction log built with numpy alone, for the speed bench
  (50,000 items × 100,000 customers) and for tiny logs in the evaluation tests. Each user
  favours one cluster of items (its category), and inside it, lower-ranked items are
  more popular.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from recs.dataset import InteractionLog
from retail.types import Event, EventType, Product

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_DAYS = 90


@dataclass(frozen=True)
class SyntheticShop:
    """A generated catalog and event log, plus the taste each customer was given."""

    products: tuple[Product, ...]
    events: tuple[Event, ...]
    customer_ids: tuple[str, ...]
    #: customer id → the category it favours.
    favourite_category: dict[str, str]
    #: the moment just after the last event.
    now: datetime


def synthetic_products(
    n_products: int, n_categories: int, *, out_of_stock: Sequence[int] = ()
) -> tuple[Product, ...]:
    """`n_products` products spread round-robin over `cat-0` … `cat-{n_categories - 1}`."""
    gone = set(out_of_stock)
    return tuple(
        Product(
            id=f"P{j:05d}",
            title=f"Product {j}",
            brand="Synthetic",
            category=f"cat-{j % n_categories}",
            price=Decimal("9.99"),
            currency="EUR",
            image=f"images/P{j:05d}.jpg",
            url=f"https://shop.example/p/P{j:05d}",
            in_stock=j not in gone,
        )
        for j in range(n_products)
    )


def synthetic_shop(
    *,
    n_customers: int = 1_000,
    n_products: int = 400,
    n_categories: int = 8,
    n_styles: int = 5,
    events_per_customer: int = 20,
    category_loyalty: float = 0.85,
    style_loyalty: float = 0.7,
    days: int = 90,
    seed: int = 0,
) -> SyntheticShop:
    """Generate a shop whose customers have strong, known category and style affinity.

    Per customer about `events_per_customer` views spread over `days`; a third of views
    lead to a cart and half of carts to a purchase, a little later.
    """
    rng = np.random.default_rng(seed)
    products = synthetic_products(n_products, n_categories)
    category = np.arange(n_products) % n_categories
    style = rng.integers(0, n_styles, n_products)
    appeal = rng.pareto(1.5, n_products) + 0.1  # a few best-sellers, a long tail

    customer_ids = tuple(f"C{i:06d}" for i in range(n_customers))
    favourite_category = rng.integers(0, n_categories, n_customers)
    favourite_style = rng.integers(0, n_styles, n_customers)
    counts = rng.poisson(events_per_customer, n_customers) + 1

    events: list[Event] = []
    times = np.sort(rng.uniform(0, days * 86_400, counts.sum()))
    order = rng.permutation(counts.sum())  # interleave customers over time
    t = iter(times[order].tolist())
    for i, cid in enumerate(customer_ids):
        loyal_cat = rng.random(counts[i]) < category_loyalty
        loyal_style = rng.random(counts[i]) < style_loyalty
        for in_cat, in_style in zip(loyal_cat, loyal_style, strict=True):
            mask = (category == favourite_category[i]) if in_cat else np.ones(n_products, bool)
            if in_style:
                mask = mask & (style == favourite_style[i])
            if not mask.any():
                mask = category == favourite_category[i]
            weights = appeal * mask
            j = int(rng.choice(n_products, p=weights / weights.sum()))
            when = _EPOCH + timedelta(seconds=next(t))
            pid = products[j].id
            events.append(
                Event(customer_id=cid, product_id=pid, type=EventType.view, timestamp=when)
            )
            if rng.random() < 1 / 3:
                when += timedelta(minutes=5)
                events.append(
                    Event(customer_id=cid, product_id=pid, type=EventType.cart, timestamp=when)
                )
                if rng.random() < 0.5:
                    when += timedelta(minutes=5)
                    events.append(
                        Event(
                            customer_id=cid, product_id=pid, type=EventType.purchase, timestamp=when
                        )
                    )
    now = _EPOCH + timedelta(days=days, hours=1)
    return SyntheticShop(
        products=products,
        events=tuple(events),
        customer_ids=customer_ids,
        favourite_category={
            cid: f"cat-{favourite_category[i]}" for i, cid in enumerate(customer_ids)
        },
        now=now,
    )


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
