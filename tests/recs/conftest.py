"""Fixtures shared by the recs tests: a small planted-taste shop and a fast pipeline config."""

from __future__ import annotations

import pytest

from bench.evalkit.synthetic import SyntheticShop, synthetic_shop
from recs.config import PipelineConfig
from recs.dataset import InteractionLog, from_retail
from recs.pipeline import Pipeline

#: Small enough to fit in about a second; the defaults are tuned for real data sizes.
FAST = PipelineConfig(
    als_factors=16,
    als_iterations=5,
    ranker_rounds=30,
    ranker_min_leaf=20,
    label_folds=1,
    threads=1,
)


@pytest.fixture(scope="session")
def shop() -> SyntheticShop:
    """300 customers, 3 categories × 30 products, strong planted category affinity."""
    return synthetic_shop(
        n_customers=300, n_products=90, n_categories=3, events_per_customer=12, seed=7
    )


@pytest.fixture(scope="session")
def shop_log(shop: SyntheticShop) -> InteractionLog:
    """The shop as an InteractionLog."""
    return from_retail(shop.products, shop.events, shop.customer_ids)


@pytest.fixture(scope="session")
def fitted(shop: SyntheticShop, shop_log: InteractionLog) -> Pipeline:
    """The pipeline fitted once on the shop (tests must not mutate it)."""
    return Pipeline(FAST).fit(shop_log, now=shop.now.timestamp())
