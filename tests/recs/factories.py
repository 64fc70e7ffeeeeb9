"""Hand-made products and events for the recs tests: only the fields that matter vary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from retail.types import Event, EventType, Product

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
