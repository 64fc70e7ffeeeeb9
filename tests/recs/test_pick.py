"""What a campaign relies on: the rules every Pick keeps, on small and synthetic shops."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from recs import REASONS, RecConfig, RecsError, fit, recommend
from recs.synthetic import SyntheticShop
from tests.recs.factories import NOW, event, product


def _category(shop: SyntheticShop, product_id: str) -> str:
    return next(p.category for p in shop.products if p.id == product_id)


def test_every_asked_customer_gets_one_pick_in_the_order_asked(shop: SyntheticShop) -> None:
    asked = [*shop.customer_ids[:20], "new-customer", shop.customer_ids[0]]
    picks = recommend(shop.products, shop.events, asked, now=shop.now)
    assert list(picks) == list(dict.fromkeys(asked))
    for customer_id, pick in picks.items():
        assert pick.customer_id == customer_id
        assert len(pick.product_ids) == len(pick.scores) == len(pick.reasons) == 3
        assert len(set(pick.product_ids)) == 3


def test_purchased_and_out_of_stock_products_are_never_recommended(shop: SyntheticShop) -> None:
    # Take the five best sellers out of stock: they would otherwise be everywhere.
    sales = Counter(e.product_id for e in shop.events if e.type == "purchase")
    gone = {pid for pid, _ in sales.most_common(5)}
    products = [p.model_copy(update={"in_stock": p.id not in gone}) for p in shop.products]
    bought: dict[str, set[str]] = {}
    for e in shop.events:
        if e.type == "purchase":
            bought.setdefault(e.customer_id, set()).add(e.product_id)
    picks = recommend(products, shop.events, [*shop.customer_ids, "new"], now=shop.now, n=10)
    for customer_id, pick in picks.items():
        assert not set(pick.product_ids) & gone
        assert not set(pick.product_ids) & bought.get(customer_id, set())


def test_customers_without_history_get_popular_in_stock_products() -> None:
    products = [product("hot"), product("warm", "bags"), product("cold", "hats")]
    products.append(product("hottest-but-sold-out", in_stock=False))
    events = [event(f"c{i}", "hot") for i in range(10)]
    events += [event(f"c{i}", "warm") for i in range(5)]
    events += [event(f"c{i}", "hottest-but-sold-out") for i in range(20)]
    pick = recommend(products, events, ["newcomer"], now=NOW)["newcomer"]
    assert pick.product_ids == ("hot", "warm", "cold")
    assert set(pick.reasons) == {"popular-fallback"}
    assert list(pick.scores) == sorted(pick.scores, reverse=True)


def test_cold_start_list_is_spread_over_categories() -> None:
    products = [product(f"s{i}", "shoes") for i in range(5)] + [product("bag", "bags")]
    events = [event(f"c{i}", f"s{j}") for i in range(10) for j in range(5)]
    events.append(event("c0", "bag"))
    pick = recommend(products, events, ["newcomer"], now=NOW)["newcomer"]
    # "bag" is the least popular product but the only other category: it takes a slot.
    assert "bag" in pick.product_ids
    assert sum(pid.startswith("s") for pid in pick.product_ids) == 2


def test_customers_get_mostly_their_favourite_category(shop: SyntheticShop) -> None:
    config = RecConfig(max_per_category=5)  # let the model show what it learned
    picks = recommend(
        shop.products, shop.events, shop.customer_ids, now=shop.now, n=5, config=config
    )
    share = [
        sum(_category(shop, pid) == shop.favourite_category[cid] for pid in pick.product_ids) / 5
        for cid, pick in picks.items()
    ]
    assert sum(share) / len(share) > 0.8  # three categories: chance would be a third


def test_the_category_cap_holds_even_for_single_minded_customers(shop: SyntheticShop) -> None:
    picks = recommend(shop.products, shop.events, shop.customer_ids, now=shop.now, n=3)
    for pick in picks.values():
        counts = Counter(_category(shop, pid) for pid in pick.product_ids)
        assert max(counts.values()) <= 2


def test_the_cap_gives_way_when_the_catalog_has_too_few_categories() -> None:
    products = [product(f"s{i}", "shoes") for i in range(5)]
    events = [event("c1", "s0"), event("c2", "s1"), event("c2", "s0")]
    picks = recommend(products, events, ["c1", "newcomer"], now=NOW, n=3)
    assert all(len(p.product_ids) == 3 for p in picks.values())


def test_every_product_carries_a_known_reason(shop: SyntheticShop) -> None:
    picks = recommend(shop.products, shop.events, [*shop.customer_ids, "new"], now=shop.now)
    reasons = Counter(r for p in picks.values() for r in p.reasons)
    assert set(reasons) <= set(REASONS)
    assert reasons["similar-to-history"] + reasons["seen-before"] > reasons["popular-fallback"]
    assert picks["new"].reasons == ("popular-fallback",) * 3


def test_same_inputs_give_the_same_picks_and_model_version(shop: SyntheticShop) -> None:
    first = recommend(shop.products, shop.events, shop.customer_ids, now=shop.now)
    shuffled = list(shop.events)
    random.Random(1).shuffle(shuffled)
    products = list(reversed(shop.products))
    second = recommend(products, shuffled, shop.customer_ids, now=shop.now)
    assert first == second
    assert len({p.model_version for p in first.values()}) == 1


def test_model_version_changes_with_data_and_parameters(shop: SyntheticShop) -> None:
    base = fit(shop.products, shop.events, now=shop.now)
    fewer_events = fit(shop.products, shop.events[:-10], now=shop.now)
    other_dim = fit(shop.products, shop.events, now=shop.now, config=RecConfig(dim=8))
    other_seed = fit(shop.products, shop.events, now=shop.now, seed=1)
    sold_out = [shop.products[0].model_copy(update={"in_stock": False}), *shop.products[1:]]
    stock_change = fit(sold_out, shop.events, now=shop.now)
    versions = {m.version for m in (base, fewer_events, other_dim, other_seed, stock_change)}
    assert len(versions) == 5
    assert base.version.startswith("svd1-") and len(base.version) == len("svd1-") + 12


def test_events_for_unknown_products_are_ignored(shop: SyntheticShop) -> None:
    noise = [event(cid, "NOT-IN-CATALOG", "purchase") for cid in shop.customer_ids[:50]]
    noise.append(event("only-unknown", "NOT-IN-CATALOG"))
    clean = fit(shop.products, shop.events, now=shop.now)
    noisy = fit(shop.products, [*shop.events, *noise], now=shop.now)
    assert noisy.interactions.unknown_product_events == len(noise)
    assert noisy.version == clean.version
    asked = [*shop.customer_ids[:50], "only-unknown"]
    assert noisy.recommend(asked) == clean.recommend(asked)


def test_a_fitted_model_serves_many_batches_alike(shop: SyntheticShop) -> None:
    model = fit(shop.products, shop.events, now=shop.now)
    whole = model.recommend(shop.customer_ids)
    halves = {
        **model.recommend(shop.customer_ids[:150]),
        **model.recommend(shop.customer_ids[150:]),
    }
    assert whole == halves


def test_large_catalogs_are_searched_with_hnsw(shop: SyntheticShop) -> None:
    exact = fit(shop.products, shop.events, now=shop.now)
    approximate = fit(shop.products, shop.events, now=shop.now, config=RecConfig(hnsw_threshold=50))
    assert exact.index.kind == "flat" and approximate.index.kind == "hnsw"
    a = approximate.recommend(shop.customer_ids)
    b = exact.recommend(shop.customer_ids)
    again = fit(shop.products, shop.events, now=shop.now, config=RecConfig(hnsw_threshold=50))
    assert again.recommend(shop.customer_ids) == a
    same = sum(a[c].product_ids == b[c].product_ids for c in shop.customer_ids)
    assert same / len(shop.customer_ids) > 0.95


def test_with_fewer_in_stock_products_than_asked_a_pick_holds_what_there_is() -> None:
    products = [product("a"), product("b", "bags"), product("c", in_stock=False)]
    events = [event("c1", "a"), event("c1", "c")]
    picks = recommend(products, events, ["c1", "new"], now=NOW, n=5)
    assert sorted(picks["c1"].product_ids) == ["a", "b"]
    assert sorted(picks["new"].product_ids) == ["a", "b"]


def test_a_customer_who_bought_everything_in_stock_gets_no_pick() -> None:
    products = [product("a"), product("b")]
    events = [event("c1", "a", "purchase"), event("c1", "b", "purchase"), event("c2", "a")]
    picks = recommend(products, events, ["c1", "c2"], now=NOW)
    assert list(picks) == ["c2"]
    assert picks["c2"].product_ids == ("a", "b")


def test_nothing_in_stock_is_an_error_that_says_so() -> None:
    products = [product("a", in_stock=False), product("b", in_stock=False)]
    with pytest.raises(RecsError, match="no product is in stock"):
        recommend(products, [event("c1", "a")], ["c1"], now=NOW)


@pytest.mark.parametrize(
    "change", [{"dim": 0}, {"popularity_weight": 1.5}, {"max_per_category": 0}, {"threads": 0}]
)
def test_bad_settings_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(RecsError):
        replace(RecConfig(), **change)


def test_n_must_be_positive(shop: SyntheticShop) -> None:
    with pytest.raises(RecsError, match="n must be at least 1"):
        recommend(shop.products, shop.events, ["x"], now=shop.now, n=0)


def test_without_any_events_everyone_gets_the_catalog_in_id_order() -> None:
    products = [product("b", "bags"), product("a"), product("c", "hats")]
    picks = recommend(products, [], ["x", "y"], now=NOW)
    assert picks["x"].product_ids == picks["y"].product_ids == ("a", "b", "c")


def test_asking_for_nobody_returns_no_picks(shop: SyntheticShop) -> None:
    assert recommend(shop.products, shop.events, [], now=shop.now) == {}
