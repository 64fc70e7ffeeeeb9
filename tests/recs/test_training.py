"""Serving a registered (older) model on today's catalog and events: `serve_current`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from recs.arrivals import Arrival
from recs.dataset import from_retail
from recs.pick import reason_counts, serve
from recs.pipeline import Pipeline
from recs.rules import Rules
from recs.training import _with_arrival, serve_current
from retail.types import Product
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


def _arrivals_shop() -> tuple[list[Product], list, Pipeline]:
    """Shoes and coffee shoppers, and a model trained before the new products arrived."""
    shoes = [
        product(f"s{i}", "shoes").model_copy(update={"title": f"Trail runner {i}"})
        for i in range(6)
    ]
    coffee = [
        product(f"k{i}", "coffee").model_copy(update={"title": f"Espresso beans {i}"})
        for i in range(6)
    ]
    events = [
        event(f"r{i}", f"s{(i + j) % 6}", "purchase" if j == 1 else "view", days_ago=60 - j)
        for i in range(20)
        for j in range(3)
    ]
    events += [
        event(f"b{i}", f"k{(i + j) % 6}", "purchase" if j == 1 else "view", days_ago=60 - j)
        for i in range(20)
        for j in range(3)
    ]
    log = from_retail(shoes + coffee, events)
    return shoes + coffee, events, Pipeline(FAST).fit(log, now=TRAINED_AT.timestamp())


def test_a_product_added_after_training_is_picked_for_a_customer_whose_history_matches() -> None:
    products, events, model = _arrivals_shop()
    runner = product("s-new", "shoes").model_copy(update={"title": "Trail runner Pro"})
    luxury = product("s-gold", "shoes").model_copy(
        update={"title": "Trail runner gold", "price": Decimal("900.00")}
    )
    sold_out = product("k-new", "coffee").model_copy(
        update={"title": "Espresso beans decaf", "in_stock": False}
    )
    today = [*products, runner, luxury, sold_out]
    rules = Rules(epsilon=0.0)

    picks = serve_current(model, today, events, ["r1", "b1"], n=3, now=NOW, rules=rules)

    runner_picks = picks["r1"]
    assert "s-new" in runner_picks.product_ids  # the model has never seen it
    slot = runner_picks.product_ids.index("s-new")
    assert slot > 0  # the model's best pick keeps the first slot
    assert runner_picks.reasons[slot].startswith("new(sim=")
    assert "s-gold" not in runner_picks.product_ids  # 45 times the price they pay
    # The coffee buyer is not shown running shoes, nor the sold-out decaf.
    assert not {"s-new", "s-gold", "k-new"} & set(picks["b1"].product_ids)
    # Counted as its own kind of reason, for the campaign's summary.
    _, kinds = reason_counts(picks)
    assert kinds.get("new") == 1


def test_a_new_product_the_customer_already_bought_is_not_offered_again() -> None:
    products, events, model = _arrivals_shop()
    runner = product("s-new", "shoes").model_copy(update={"title": "Trail runner Pro"})
    later = [*events, event("r1", "s-new", "purchase", days_ago=2)]
    picks = serve_current(
        model, [*products, runner], later, ["r1", "r2"], n=3, now=NOW, rules=Rules(epsilon=0.0)
    )
    assert "s-new" not in picks["r1"].product_ids
    assert "s-new" in picks["r2"].product_ids


def test_a_new_product_never_takes_the_exploration_slot() -> None:
    slots = [
        ("a", 0.9, "source=als;top=x"),
        ("b", 0.5, "source=cooc;top=y"),
        ("c", 0.1, "explore(p=0.01)"),
    ]
    placed = _with_arrival(slots, Arrival("new", 0.4), 3)
    assert [s[0] for s in placed] == ["a", "new", "c"]
    # Room left: it is added before the exploration slot, nothing is pushed out.
    placed = _with_arrival(slots[1:], Arrival("new", 0.4), 3)
    assert [s[0] for s in placed] == ["b", "new", "c"]
