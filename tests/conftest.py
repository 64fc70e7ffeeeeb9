"""Fixtures shared by every test package: a small demo retailer, generated once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from retail.demo import DemoFiles, generate_retailer
from storage import Target
from tests.postgres import PostgresServer


@pytest.fixture(scope="session")
def small_retailer(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    """A deterministic demo shop small enough for fast tests (60 products, 120 customers)."""
    out = tmp_path_factory.mktemp("retailer")
    return generate_retailer(out, seed=11, n_products=60, n_customers=120, days=30, image_size=360)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL cluster for the whole test session (127.0.0.1, a free
    port); each test that needs one makes its own database in it."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Target]:
    """Where a store's state goes, on each engine in turn: `database("outbox")` is a
    SQLite file in the test's folder, or a new PostgreSQL database (the same one for every
    name within a test: on PostgreSQL all of reelcast's stores share one database)."""
    if request.param == "sqlite":
        return lambda name: tmp_path / f"{name}.sqlite"
    url = request.getfixturevalue("postgres").create_database()
    return lambda name: url
