"""Hand-made products and events for the recs tests: only the fields that matter vary.

And `recommend`, fit and serve in one call, as most pick tests want it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from recs.config import PipelineConfig
from recs.dataset import from_retail
from recs.pick import serve
from recs.pipeline import Pipeline
from recs.rules import Rules
from retail.types import Event, EventType, Pick, Product

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def product(pid: str, category: str = "shoes", *, in_stock: bool = True) -> Product:
    """A valid product whose only interesting fields are id, category and stock."""
    return Product(
        id=pid,
        title=f"Product {pid}",
        brand="Acme",
        category=category,
        price=Decimal("19.90"),
        currency="EUR",
        image=f"images/{pid}.jpg",
        url=f"https://shop.example/p/{pid}",
        in_stock=in_stock,
    )


def event(
    customer_id: str, product_id: str | None, kind: str = "view", *, days_ago: float = 1.0
) -> Event:
    """An event `days_ago` days before NOW."""
    return Event(
        customer_id=customer_id,
        product_id=product_id,
        type=EventType(kind),
        timestamp=NOW - timedelta(days=days_ago),
    )


def recommend(
    products: Sequence[Product],
    events: Sequence[Event],
    customer_ids: Sequence[str],
    *,
    n: int = 3,
    now: datetime,
    rules: Rules | None = None,
    config: PipelineConfig | None = None,
    groups: Mapping[str, str] | None = None,
) -> dict[str, Pick]:
    """Fit the pipeline on the events before `now`, then `serve` up to `n` picks each."""
    log = from_retail(products, events, customer_ids)
    pipeline = Pipeline(config).fit(log, now=now.timestamp())
    return serve(pipeline, customer_ids, n=n, now=now, rules=rules, groups=groups)
