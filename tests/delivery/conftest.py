"""Shared fixtures for delivery tests: a customer, products, a poster, a real SMTP sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from delivery_support import (
    CAMPAIGN,
    NOW,
    POSTAL,
    SECRET,
    SENDER,
    TEMPLATES,
    make_customer,
    make_product,
)
from PIL import Image

from delivery.compose import compose_campaign_email
from delivery.links import Links, make_token
from delivery.outbox import Outbox
from delivery.sink import MaildirSink
from retail.types import Customer
from storage import Target


@pytest.fixture
def poster(tmp_path: Path) -> Path:
    path = tmp_path / "poster.jpg"
    Image.new("RGB", (72, 128), (200, 40, 40)).save(path, "JPEG")
    return path


@pytest.fixture
def links() -> Links:
    return Links("https://shop.example", unsubscribe_address="unsubscribe@shop.example")


@pytest.fixture
def compose(poster: Path, links: Links) -> Callable[..., EmailMessage]:
    """compose_campaign_email(...).message with defaults; keyword arguments override them."""

    def build(customer: Customer | None = None, **overrides: Any) -> EmailMessage:
        customer = customer or make_customer()
        token = make_token(SECRET, CAMPAIGN, customer.id)
        kwargs: dict[str, Any] = {
            "customer": customer,
            "products": [make_product(1), make_product(2, price=Decimal("19.99"))],
            "poster": poster,
            "video_url": "https://cdn.shop.example/v/abc123.mp4",
            "links": links.for_token(token),
            "sender": SENDER,
            "postal_address": POSTAL,
            "subject": "Picked for you",
            "campaign_id": CAMPAIGN,
            "templates_dir": TEMPLATES,
            "now": NOW,
        }
        kwargs.update(overrides)
        return compose_campaign_email(**kwargs).message

    return build


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MaildirSink]:
    with MaildirSink(tmp_path / "Maildir") as server:
        yield server


@pytest.fixture
def outbox_target(tmp_path: Path) -> Target:
    """Where the `outbox` fixture keeps its rows: a SQLite file. A test module about the
    store itself runs on both engines by overriding this with the `database` fixture:

        @pytest.fixture
        def outbox_target(database: Callable[[str], Target]) -> Target:
            return database("state")
    """
    return tmp_path / "state" / "outbox.sqlite"


@pytest.fixture
def outbox(outbox_target: Target) -> Iterator[Outbox]:
    with Outbox(outbox_target) as box:
        yield box


@pytest.fixture
def enqueue(outbox: Outbox, compose: Callable[..., EmailMessage]) -> Callable[..., bool]:
    """Compose and queue one email for customer number `n`, due at NOW."""

    def add(n: int = 1, **overrides: Any) -> bool:
        customer = make_customer(n, **overrides)
        return outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=customer.id,
            recipient=str(customer.email),
            message=compose(customer),
            due_at=NOW,
            now=NOW,
        )

    return add
