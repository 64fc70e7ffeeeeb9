"""Serving a registered (older) model on today's catalog and events: `serve_current`."""

from __future__ import annotations

from datetime import timedelta

from recs.dataset import from_retail
from recs.pick import serve
from recs.pipeline import Pipeline
from recs.rules import Rules
from recs.training import serve_current
from tests.recs.conftest import FAST
from tests.recs.factories import NOW, event, product

TRAINED_AT = NOW - timedelta(days=40)
RULES = Rules(repurchase_days=30, repurchase_categories=frozenset({"coffee"}), epsilon=0.0)
N = 12  # every product: what is missing from a Pick was removed, not outranked


def _shop() -> tuple[list, list, Pipeline]:
    """Products, the events up to training, and a model trained 40 days ago."""
    products = [product(f"s{i}", "shoes") for i in range(8)]
    products += [product("beans", "coffee"), product("boot", "boots")]
    events = [
        event(f"c{i}", f"s{(i + j) % 8}", "purchase" if j == 2 else "view", days_ago=60 - j)
        for i in range(40)
        for j in range(4)
    ]
    events += [event(f"c{i}", "beans", "purchase", days_ago=55) for i in range(0, 40, 2)]
    events += [event(f"c{i}", "boot", "view", days_ago=50) for i in range(0, 40, 3)]
    # alice: bought beans 5 days before training, still inside the 30-day window then
    events += [event("alice", "s0", days_ago=50), event("alice", "beans", "purchase", days_ago=45)]
    log = from_retail(products, events)
    return products, events, Pipeline(FAST).fit(log, now=TRAINED_AT.timestamp())


def test_serve_current_applies_todays_stock_and_purchases_to_an_older_model() -> None:
    products, events, model = _shop()
    # Since training: the boot sold out; alice bought s3 (shoes), bob bought s5 (shoes)
    # 35 days ago and beans (coffee, the repurchase category) 10 days ago.
    today = [p.model_copy(update={"in_stock": p.id != "boot"}) for p in products]
    later = [
        *events,
        event("alice", "s3", "purchase", days_ago=10),
        event("bob", "s5", "purchase", days_ago=35),
        event("bob", "beans", "purchase", days_ago=10),
    ]

    picks = serve_current(model, today, later, ["alice", "bob"], n=N, now=NOW, rules=RULES)
    alice, bob = (set(picks[c].product_ids) for c in ("alice", "bob"))
    assert "boot" not in alice | bob  # out of stock today
    assert "s3" not in alice  # bought after the model was trained
    assert "s5" not in bob  # shoes never come back, however long ago
    assert "beans" not in bob  # bought 10 days ago: inside the 30-day window
    assert "beans" in alice  # bought 45 days ago: the window is over, it comes back
    assert "s0" in alice  # viewed only: nothing keeps it out
    assert {p.model_version for p in picks.values()} == {model.version}

    # The model alone knows none of today's facts: without serve_current they are shown.
    stale = serve(model, ["alice", "bob"], n=N, now=NOW, rules=RULES)
    assert {"boot", "s3"} <= set(stale["alice"].product_ids)
    assert {"boot", "s5", "beans"} <= set(stale["bob"].product_ids)

    # After bob's window his beans come back too; his shoes still do not.
    after = NOW + timedelta(days=25)
    bob_later = serve_current(model, today, later, ["bob"], n=N, now=after, rules=RULES)
    assert "beans" in bob_later["bob"].product_ids
    assert "s5" not in bob_later["bob"].product_ids
