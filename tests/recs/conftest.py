"""Fixtures shared by the recs tests."""

from __future__ import annotations

import pytest

from recs.synthetic import SyntheticShop, synthetic_shop


@pytest.fixture(scope="session")
def shop() -> SyntheticShop:
    """300 customers, 3 categories × 30 products, strong planted category affinity."""
    return synthetic_shop(
        n_customers=300, n_products=90, n_categories=3, events_per_customer=12, seed=7
    )
