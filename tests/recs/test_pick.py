"""What a campaign relies on: the rules every Pick keeps."""

from __future__ import annotations

import copy
import re
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

import recs.pick as pick_module
from bench.evalkit.synthetic import SyntheticShop, synthetic_shop
from recs.dataset import from_retail
from recs.explore import explore
from recs.pick import reason_counts, serve
from recs.pipeline import Pipeline
from recs.rules import Rules, purchase_exclusions, select
from retail.types import Pick
from tests.recs.conftest import FAST
from tests.recs.factories import NOW, event, product, recommend

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
    assert len(picks) == len(shop.customer_ids)  # everyone gets a Pick: the loop is not empty
    for pick in picks.values():
        assert len(pick.product_ids) == 3
        assert len({category[pid] for pid in pick.product_ids}) == 3


@pytest.mark.parametrize(
    ("mmr_lambda", "expected"), [(0.0, [1, 4, 3]), (0.5, [1, 4, 3]), (1.0, [1, 0, 4])]
)
def test_mmr_fills_every_slot_at_any_lambda(mmr_lambda: float, expected: list[int]) -> None:
    # Pool positions out of relevance order and an empty slot in the middle. At λ = 0 the
    # old 0 × -inf = NaN left every row empty; now only new categories count there, ties
    # going to the more relevant entry; at λ = 1 only relevance counts.
    items = np.array([[0, 1, -1, 2, 3, 4], [5, -1, -1, -1, -1, -1]])
    scores = np.array([[0.85, 0.9, -np.inf, 0.6, 0.8, 0.1], [0.3] + [-np.inf] * 5])
    categories = np.array([0, 0, 1, 2, 0, 0])  # per item
    rules = Rules(diversity="mmr", mmr_lambda=mmr_lambda)
    chosen, chosen_scores = select(items, scores, categories, 3, rules)
    assert chosen[0].tolist() == expected
    assert chosen[1].tolist() == [0, -1, -1]  # a short pool fills what it can
    np.testing.assert_array_equal(chosen_scores[0], scores[0, expected])


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


def test_exploration_draws_only_filled_slots_with_the_exact_propensity() -> None:
    ids = [f"C{i}" for i in range(40_000)]
    # Empty slots in the middle and filled ones past the count of filled slots: the old
    # draw over positions [0, 7) hit empty slots and never reached items 15 and 16.
    row = np.array([10, 11, -1, 12, -1, -1, 13, 14, -1, 15, 16, -1])
    pool = np.tile(row, (len(ids), 1))
    shown = np.tile([10, 12, 13], (len(ids), 1))  # 10 and 12 fill the other slots
    eps, m = 0.1, 5  # eligible: 11, 13 (the greedy last item), 14, 15, 16
    does, position, propensity = explore(ids, pool, shown, epsilon=eps, seed=3)
    assert abs(does.mean() - eps) < 0.02  # σ ≈ 0.0015 at 40,000 rows
    assert (position[~does] == -1).all() and (position[does] >= 0).all()
    drawn = pool[np.flatnonzero(does), position[does]]
    assert (drawn >= 0).all()  # never an empty slot
    share = Counter(drawn.tolist())
    assert set(share) == {11, 13, 14, 15, 16}
    assert all(abs(c / does.sum() - 1 / m) < 0.03 for c in share.values())  # uniform
    np.testing.assert_allclose(
        propensity[does], np.where(drawn == 13, eps / m + (1 - eps), eps / m)
    )
    np.testing.assert_allclose(propensity[~does], eps / m + (1 - eps))  # the greedy item
    # Nothing eligible (every filled slot is shown elsewhere): never explores, p = 1.
    full = np.array([[7, -1, 8]] * 50)
    few = explore(ids[:50], full, np.array([[7, 8, -1]] * 50), epsilon=1.0, seed=3)
    assert not few[0].any() and (few[1] == -1).all() and (few[2] == 1.0).all()


@pytest.mark.slow
def test_served_exploration_rate_and_logged_propensity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 8,000 customers the exploration slot is used at rate ε ± 0.02 (σ ≈ 0.0045),
    and each explored slot logs P(shown) = ε/m (+ 1 − ε if it is the greedy item), m the
    filled pool slots not shown in the other slots."""
    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # customer → (pool, shown) rows
    real = pick_module.explore

    def spy(ids, pool, shown, **kwargs):  # type: ignore[no-untyped-def]
        seen.update((c, (pool[r].copy(), shown[r].copy())) for r, c in enumerate(ids))
        return real(ids, pool, shown, **kwargs)

    monkeypatch.setattr(pick_module, "explore", spy)
    shop = synthetic_shop(
        n_customers=8_000, n_products=300, n_categories=6, events_per_customer=10, seed=11
    )
    eps = 0.2
    picks = recommend(
        shop.products,
        shop.events,
        shop.customer_ids,
        now=shop.now,
        n=3,
        rules=Rules(epsilon=eps),
        config=FAST,
    )
    assert len(picks) == len(shop.customer_ids)
    assert len(seen) == len(shop.customer_ids)
    holes = [((p[:-1] < 0) & (p[1:] >= 0)).any() for p, _ in seen.values()]
    assert np.mean(holes) > 0.5  # the pools do have empty slots between filled ones
    explored = 0
    log_ids = {p.id: i for i, p in enumerate(sorted(shop.products, key=lambda p: p.id))}
    for customer_id in shop.customer_ids:
        pick = picks[customer_id]
        assert len(pick.product_ids) == len(set(pick.product_ids)) == 3
        match = re.fullmatch(r"explore\(p=([0-9.e-]+)\)", pick.reasons[-1])
        if match is None:
            continue
        explored += 1
        pool, shown = seen[customer_id]
        eligible = pool[(pool >= 0) & ~np.isin(pool, shown[:-1])]
        item = log_ids[pick.product_ids[-1]]
        assert item in eligible
        exact = eps / len(eligible) + (1 - eps) * (item == shown[-1])
        assert float(match.group(1)) == pytest.approx(exact, rel=1e-3)
    assert abs(explored / len(picks) - eps) < 0.02


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
    assert re.fullmatch(REASON_FORMS["content"], reason), reason
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


_P = r"(0\.[0-9]+|1|[0-9.]+e-[0-9]+)"
#: Every reason form a Pick can carry; ranked picks must name their top features. The
#: last slot of a pick that could explore and did not ends with its propensity (;p=…).
REASON_FORMS = {
    "ranked": rf"source=[a-z]+(\+[a-z]+)*;top=[a-z_]+(,[a-z_]+)*(;p={_P})?",
    "fallback": rf"fallback=popular(-locale)?(;p={_P})?",
    "content": rf"content\(sim=[01]\.[0-9]{{2}}\)(;p={_P})?",
    "explore": rf"explore\(p={_P}\)",
}


def _form(reason: str) -> str:
    """Which of REASON_FORMS the reason is, in full (AssertionError when none)."""
    forms = [name for name, pattern in REASON_FORMS.items() if re.fullmatch(pattern, reason)]
    assert len(forms) == 1, reason
    return forms[0]


def test_reasons_are_machine_readable(shop: SyntheticShop) -> None:
    pipeline = Pipeline(FAST).fit(
        from_retail(shop.products, shop.events, shop.customer_ids), now=shop.now.timestamp()
    )
    groups = {"new-de": "DE", shop.customer_ids[0]: "DE"}
    customers = [*shop.customer_ids[:100], "new", "new-de"]
    forms: Counter[str] = Counter()
    for rules in (NO_EXPLORE, Rules(epsilon=0.5)):
        picks = serve(pipeline, customers, n=3, now=shop.now, rules=rules, groups=groups)
        for pick in picks.values():
            forms.update(_form(r) for r in pick.reasons)
            assert all(_form(r) == "explore" for r in pick.reasons if r.startswith("explore"))
        assert {_form(r) for r in picks["new"].reasons[:-1]} == {"fallback"}  # last: explore?
        assert picks["new-de"].reasons[0] == "fallback=popular-locale"
    assert {"ranked", "fallback", "explore"} <= set(forms)
    assert not re.fullmatch(REASON_FORMS["ranked"], "source=als+cooc")  # top is required


def test_a_log_too_small_for_a_ranker_still_gives_full_reasons() -> None:
    products = [product(f"p{i}", f"c{i % 2}") for i in range(6)]
    events = [event("a", "p0", days_ago=3), event("a", "p1", days_ago=2), event("b", "p0")]
    picks = recommend(products, events, ["a", "b"], now=NOW, n=3, config=FAST, rules=NO_EXPLORE)
    ranked = [r for p in picks.values() for r in p.reasons if r.startswith("source=")]
    assert ranked and all(re.fullmatch(REASON_FORMS["ranked"], r) for r in ranked)
    assert all(r.endswith(";top=rrf") for r in ranked)  # no ranker: reciprocal-rank fusion


def test_reason_counts_count_slots_per_source_and_per_kind() -> None:
    def pick(customer_id: str, *reasons: str) -> Pick:
        return Pick(
            customer_id=customer_id,
            product_ids=tuple(f"{customer_id}-{i}" for i in range(len(reasons))),
            scores=tuple(1.0 for _ in reasons),
            reasons=reasons,
            model_version="rc3-000000000000",
        )

    picks = {
        "a": pick("a", "source=als+cooc;top=recency_item,cat_affinity", "source=cooc;top=rrf"),
        "b": pick("b", "source=trend;top=item_pop", "content(sim=0.42)", "explore(p=0.0125)"),
        "c": pick("c", "fallback=popular", "fallback=popular-locale", "fallback=popular"),
    }
    sources, kinds = reason_counts(picks)
    assert sources == {"als": 1, "cooc": 2, "trend": 1}
    assert kinds == {
        "ranked": 3,
        "content": 1,
        "explore": 1,
        "fallback=popular": 2,
        "fallback=popular-locale": 1,
    }
    assert sum(kinds.values()) == sum(len(p.reasons) for p in picks.values())
    assert reason_counts({}) == ({}, {})


def test_serving_in_batches_changes_no_pick(fitted: Pipeline, shop: SyntheticShop) -> None:
    small = copy.copy(fitted)
    small.config = replace(fitted.config, batch_users=7)
    customers = [*shop.customer_ids[:60], "new", shop.customer_ids[3]]
    groups = {"new": "DE", shop.customer_ids[1]: "DE"}
    rules = Rules(epsilon=0.3)
    one = serve(fitted, customers, n=4, now=shop.now, rules=rules, groups=groups)
    assert serve(small, customers, n=4, now=shop.now, rules=rules, groups=groups) == one
    assert list(one) == list(dict.fromkeys(customers))


def test_events_after_now_do_not_change_picks(shop: SyntheticShop) -> None:
    future = [event(shop.customer_ids[0], shop.products[0].id, "purchase", days_ago=-1)]
    future = [e.model_copy(update={"timestamp": shop.now + timedelta(days=1)}) for e in future]
    a = recommend(shop.products, shop.events, shop.customer_ids[:20], now=shop.now, config=FAST)
    b = recommend(
        shop.products, [*shop.events, *future], shop.customer_ids[:20], now=shop.now, config=FAST
    )
    assert a == b
