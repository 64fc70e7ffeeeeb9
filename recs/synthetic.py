"""Synthetic shoppers with planted taste: data whose right answer is known.

Each customer favours one category and, inside it, one style; within that, better-selling
products are chosen more often. Tests use it to check the recommender finds the planted
structure. Not demo data: the demo retailer lives in `retail/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from retail.types import Event, EventType, Product

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


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
