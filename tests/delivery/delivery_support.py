"""Sample values and scripted SMTP servers for delivery tests.

A plain module rather than conftest, so test modules can import from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette

from delivery.sink import AnyPortController
from retail.types import Customer, Product

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
SECRET = b"test-secret-that-is-long-enough-32b"
CAMPAIGN = "spring-2026"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
SENDER = "Demo Shop <news@shop.example>"
POSTAL = "Demo Shop GmbH\nHauptstraße 1\n10115 Berlin, Germany"


def make_customer(n: int = 1, **overrides: Any) -> Customer:
    fields: dict[str, Any] = {
        "id": f"cust-{n:05d}",
        "email": f"shopper{n}@mail.example",
        "first_name": "Ann",
        "last_name": "Lee",
        "locale": "en_US",
    }
    fields.update(overrides)
    return Customer(**fields)


def make_product(n: int = 1, **overrides: Any) -> Product:
    fields: dict[str, Any] = {
        "id": f"sku-{n}",
        "title": f"Trail Runner {n}",
        "brand": "Acme",
        "category": "shoes",
        "price": Decimal("1234.50"),
        "currency": "EUR",
        "image": f"images/{n}.jpg",
        "url": f"https://shop.example/p/{n}?utm_source=email&ref=reel",
    }
    fields.update(overrides)
    return Product(**fields)


@contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """A real aiosmtpd server with a scripted handler; yields its port."""
    controller = AnyPortController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


class Refuses:
    """Answers RCPT TO with a fixed reply that echoes the address, as real servers do."""

    def __init__(self, code: int) -> None:
        self.code = code

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        return f"{self.code} 5.1.1 <{address}>: Recipient address rejected"


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """The app behind a real uvicorn server on a free loopback port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
