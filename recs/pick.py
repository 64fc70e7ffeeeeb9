"""One call from catalog and events to a Pick per customer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from recs.config import RecConfig
from recs.model import fit
from retail.types import Event, Pick, Product


def recommend(
    products: Sequence[Product],
    events: Sequence[Event],
    customer_ids: Sequence[str],
    *,
    n: int = 3,
    now: datetime,
    candidates: int = 100,
    seed: int = 0,
    config: RecConfig | None = None,
) -> dict[str, Pick]:
    """Fit on the snapshot and pick up to `n` products for each customer id.

    Same as `fit(products, events, now=now, seed=seed, config=config).recommend(...)`;
    fit once and call `RecModel.recommend` to serve several batches from one model.
    """
    model = fit(products, events, now=now, seed=seed, config=config)
    return model.recommend(customer_ids, n=n, candidates=candidates)
