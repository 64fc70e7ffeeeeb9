"""What a campaign relies on: the rules every Pick keeps."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest

from recs.dataset import from_retail
from recs.explore import explore
from recs.pick import recommend, serve
from recs.pipeline import Pipeline
from recs.rules import Rules, purchase_exclusions
from recs.synthetic import SyntheticShop
from tests.recs.conftest import FAST
from tests.recs.factories import NOW, event, product

NO_EXPLORE = Rules(epsilon=0.0)


def _bought(shop: SyntheticShop) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in shop.events:
        if e.type == "purchase":
            out.setdefault(e.customer_id, set()).add(e.product_id)  # type: ignore[arg-type]
    return out


def test_purchased_and_out_of_stock_products_are_never_recommended(shop: SyntheticShop) -> None:
    sales = Counter(e.product_id for e in shop.events if e.type == "purchase")
    gone = {pid for pid, _ in sales.most_common(5)}
    products = [p.model_copy(update={"in_stock": p.id not in gone}) for p in shop.products]
    bought = _bought(shop)
    picks = recommend(
        products, shop.events, [*shop.customer_ids, "new"], now=shop.now, n=10, config=FAST
    )
    assert len(picks) == len(shop.customer_ids) + 1
    for customer_id, pick in picks.items():
        assert len(pick.product_ids) == len(set(pick.product_ids)) == 10
        assert not set(pick.product_ids) & gone
        assert not set(pick.product_ids) & bought.get(customer_id, set())


def test_consumables_come_back_only_after_the_repurchase_window() -> None:
    products = [product("beans", "coffee"), product("shoe", "shoes")]
    events = [
        event("old", "beans", "purchase", days_ago=40),
        event("old", "shoe", "purchase", days_ago=40),
        event("recent", "beans", "purchase", days_ago=5),
    ]
    log = from_retail(products, events)
    rules = Rules(repurchase_days=30, repurchase_categories={"coffee"})
    blocked = purchase_exclusions(log, now=NOW.timestamp(), rules=rules).toarray()
    old, recent = log.user_ids.index("old"), log.user_ids.index("recent")
    beans, shoe = log.item_ids.index("beans"), log.item_ids.index("shoe")
    assert blocked[old, beans] == 0 and blocked[old, shoe] == 1 and blocked[recent, beans] == 1
    never = purchase_exclusions(log, now=NOW.timestamp(), rules=Rules()).toarray()
    assert never[old, beans] == 1


@pytest.mark.parametrize(("diversity", "mmr_lambda"), [("cap", 0.7), ("mmr", 0.0)])
def test_the_category_cap_holds(shop: SyntheticShop, diversity: str, mmr_lambda: float) -> None:
    # A cap is a hard rule; MMR trades relevance for novelty, and at λ = 0 only novelty counts.
    rules = Rules(max_per_category=1, diversity=diversity, mmr_lambda=mmr_lambda, epsilon=0.0)  # type: ignore[arg-type]
    category = {p.id: p.category for p in shop.products}
    picks = recommend(
        shop.products, shop.events, shop.customer_ids, now=shop.now, n=3, rules=rules, config=FAST
    )
    for pick in picks.values():
        assert len({category[pid] for pid in pick.product_ids}) == 3


def test_customers_without_history_get_popular_or_locale_popular_products(
    shop: SyntheticShop,
) -> None:
    groups = {cid: ("DE" if i % 2 else "FR") for i, cid in enumerate(shop.customer_ids)}
    groups["new-de"] = "DE"
    picks = recommend(
        shop.products,
        shop.events,
        ["new", "new-de"],
        now=shop.now,
        n=3,
        rules=NO_EXPLORE,
        config=FAST,
        groups=groups,
    )
    assert set(picks["new"].reasons) == {"fallback=popular"}
    assert set(picks["new-de"].reasons) == {"fallback=popular-locale"}
    de = {c for c, g in groups.items() if g == "DE"}
    top_de = Counter(e.product_id for e in shop.events if e.customer_id in de).most_common(1)[0][0]
    assert picks["new-de"].product_ids[0] == top_de


def test_exploration_rate_and_propensity() -> None:
    ids = [f"C{i}" for i in range(20_000)]
    chosen = np.tile(np.arange(3), (len(ids), 1))
    does, position, propensity = explore(ids, chosen, np.full(len(ids), 50), epsilon=0.1, seed=3)
    assert abs(does.mean() - 0.1) < 0.01
    assert ((position[does] >= 2) & (position[does] < 50)).all()  # never a duplicate slot
    np.testing.assert_allclose(propensity[does & (position != 2)], 0.1 / 48)


def test_explored_slots_carry_their_propensity(shop: SyntheticShop) -> None:
    picks = recommend(
        shop.products,
        shop.events,
        shop.customer_ids,
        now=shop.now,
        n=3,
        rules=Rules(epsilon=0.3),
        config=FAST,
    )
    explored = [p.reasons[-1] for p in picks.values() if p.reasons[-1].startswith("explore")]
    assert 0.2 < len(explored) / len(picks) < 0.4
    for reason in explored:
        p = float(re.fullmatch(r"explore\(p=([0-9.e-]+)\)", reason).group(1))  # type: ignore[union-attr]
        assert 0 < p <= 1


def test_boosts_and_blocks(shop: SyntheticShop) -> None:
    category = {p.id: p.category for p in shop.products}
    blocked = recommend(
        shop.products,
        shop.events,
        shop.customer_ids[:100],
        now=shop.now,
        n=3,
        config=FAST,
        rules=Rules(block_categories={"cat-0"}, epsilon=0.0),
    )
    assert all(category[pid] != "cat-0" for p in blocked.values() for pid in p.product_ids)
    boosted = recommend(
        shop.products,
        shop.events,
        shop.customer_ids[:100],
        now=shop.now,
        n=3,
        config=FAST,
        rules=Rules(boost_categories={"cat-1": 5.0}, epsilon=0.0),
    )
    assert all(category[p.product_ids[0]] == "cat-1" for p in boosted.values())


def test_a_new_product_reaches_customers_through_content_similarity() -> None:
    def titled(pid: str, category: str, title: str) -> object:
        return product(pid, category).model_copy(update={"title": title})

    products = [titled(f"shoe{i}", "shoes", f"Trail Running Shoe {i}") for i in range(6)]
    products += [titled(f"bag{i}", "bags", f"City Tote Bag {i}") for i in range(6)]
    products.append(titled("trail", "shoes", "Trail Running Shoe Pro"))
    events = [
        event(f"c{i}", f"shoe{(i + j) % 6}", days_ago=j + 1) for i in range(30) for j in range(3)
    ]
    events += [
        event(f"b{i}", f"bag{(i + j) % 6}", days_ago=j + 1) for i in range(30) for j in range(3)
    ]
    picks = recommend(products, events, ["c0", "b0"], now=NOW, n=3, config=FAST, rules=NO_EXPLORE)
    assert "trail" in picks["c0"].product_ids
    reason = picks["c0"].reasons[picks["c0"].product_ids.index("trail")]
    assert reason.startswith("content(sim=")
    assert "trail" not in picks["b0"].product_ids  # bags are not like trail shoes


def test_picks_are_deterministic_and_versioned(shop: SyntheticShop) -> None:
    a = recommend(shop.products, shop.events, shop.customer_ids, now=shop.now, config=FAST)
    b = recommend(shop.products, shop.events, shop.customer_ids, now=shop.now, config=FAST)
    assert a == b
    assert len({p.model_version for p in a.values()}) == 1
    fewer = recommend(
        shop.products, shop.events[:-10], shop.customer_ids[:5], now=shop.now, config=FAST
    )
    assert next(iter(fewer.values())).model_version != next(iter(a.values())).model_version


def test_reasons_are_machine_readable(shop: SyntheticShop) -> None:
    pipeline = Pipeline(FAST).fit(
        from_retail(shop.products, shop.events, shop.customer_ids), now=shop.now.timestamp()
    )
    picks = serve(pipeline, shop.customer_ids[:50], n=3, now=shop.now, rules=NO_EXPLORE)
    pattern = re.compile(r"source=[a-z]+(\+[a-z]+)*(;top=[a-z_]+(,[a-z_]+)*)?")
    for pick in picks.values():
        assert all(pattern.fullmatch(r) for r in pick.reasons), pick.reasons


def test_events_after_now_do_not_change_picks(shop: SyntheticShop) -> None:
    future = [event(shop.customer_ids[0], shop.products[0].id, "purchase", days_ago=-1)]
    future = [e.model_copy(update={"timestamp": shop.now + timedelta(days=1)}) for e in future]
    a = recommend(shop.products, shop.events, shop.customer_ids[:20], now=shop.now, config=FAST)
    b = recommend(
        shop.products, [*shop.events, *future], shop.customer_ids[:20], now=shop.now, config=FAST
    )
    assert a == b
