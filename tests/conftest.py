"""Fixtures shared by every test package: a small demo retailer, generated once."""

from __future__ import annotations

import pytest

from retail.demo import DemoFiles, generate_retailer


@pytest.fixture(scope="session")
def small_retailer(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    """A deterministic demo shop small enough for fast tests (60 products, 120 customers)."""
    out = tmp_path_factory.mktemp("retailer")
    return generate_retailer(out, seed=11, n_products=60, n_customers=120, days=30, image_size=360)
