"""Off-policy evaluation: the logged propensities, the estimators and their intervals.

The intervals are checked by simulation (`bench/evalkit/ope_sim.py`): customers whose
click probabilities are known, logged by the campaign's own exploration code.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bench.evalkit.ope_sim import World, ope_coverage, simulate
from bench.evalkit.synthetic import SyntheticShop
from recs.offpolicy import (
    Round,
    counterfactual,
    estimate,
    estimate_choice,
    is_greedy,
    logged_propensity,
    logged_rounds,
    rewards,
    weighted_poisson_interval,
)
from recs.pick import reason_counts, serve
from recs.pipeline import Pipeline
from recs.rules import Rules
from recs.training import serve_current
from retail.types import Event, EventType

SENT = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)

#: Low overlap on purpose (2,000 customers, ε = 0.2 over pools of 5 to 20: mean ESS
#: about 50), where a normal interval with the sample variance covers the click rate in
#: about 80 % of runs and the conversion rate in under 40 %.
SMALL = World(customers=2000)


def test_the_logged_propensity_is_read_from_either_form_of_reason() -> None:
    assert logged_propensity("explore(p=0.0125)") == 0.0125
    assert logged_propensity("explore(p=1.25e-05)") == 1.25e-05
    assert logged_propensity("source=als+cooc;top=recency_item,cat_affinity;p=0.9625") == 0.9625
    assert logged_propensity("fallback=popular;p=1") == 1.0
    assert logged_propensity("content(sim=0.42);p=0.8") == 0.8
    for none in ("source=als;top=rrf", "fallback=popular", "content(sim=0.42)", "new(sim=0.5)"):
        assert logged_propensity(none) is None
    assert logged_propensity("fallback=popular;p=0") is None  # not a probability of a shown item
    assert is_greedy(0.9625) and not is_greedy(0.0125)


def test_intervals_cover_the_true_click_rate_in_simulation() -> None:
    """200 simulated campaigns with known click probabilities: the 95 % intervals of the
    target model's click and conversion rates cover the truth in at least 90 % of runs."""
    result = ope_coverage(200, seed=0, world=SMALL)
    assert result["refused"] == 0
    assert result["ope_coverage"] >= 0.9, result
    assert result["ips_coverage"] >= 0.9, result
    assert result["conversion_coverage"] >= 0.9, result
    # Not vacuous: the target differs from the logging model, the estimate tracks it.
    assert result["mean_target_truth"] > result["mean_identical_truth"] + 0.01
    assert abs(result["mean_target_snips"] - result["mean_target_truth"]) < 0.005


def test_a_model_identical_to_the_logging_one_is_estimated_within_its_interval() -> None:
    result = ope_coverage(100, seed=1, world=SMALL)
    assert result["identical_coverage"] >= 0.9 and result["identical_ips_coverage"] >= 0.9
    # The logging policy itself (exploration included): every weight is 1, the estimate
    # is the logged mean exactly.
    assert result["on_policy_exact"] is True
    run = simulate(SMALL, 3, seed=1)
    assert run.identical.ok
    assert run.identical.snips_low <= run.identical_truth <= run.identical.snips_high
    assert run.identical.ess > 0.7 * SMALL.customers  # greedy rounds weigh about 1 each


def test_no_estimate_on_low_overlap() -> None:
    tiny = World(customers=400, epsilon=0.02)
    result = ope_coverage(20, seed=2, world=tiny)
    assert result["refused"] == 20 and math.isnan(result["ope_coverage"])
    run = simulate(tiny, 0, seed=2)
    assert not run.target.ok
    assert run.target.refusal.startswith("cannot be estimated: ")
    assert "effective sample size" in run.target.refusal or "never showed" in run.target.refusal
    # The ESS rule on its own: 40 matched rounds of weight 1 and one of weight 100.
    p = np.r_[np.full(40, 1.0), 0.01, np.full(59, 0.5)]
    hit = np.r_[np.ones(41, dtype=bool), np.zeros(59, dtype=bool)]
    refused = estimate(np.zeros(100), p, hit.astype(float))
    assert refused.ess == pytest.approx(140**2 / (40 + 100**2))
    assert not refused.ok and "effective sample size 1.9 < 30" in refused.refusal
    assert refused.to_dict()["snips"] is None
    assert estimate([], [], []).refusal == "cannot be estimated: no logged round"
    assert "no logged round shows" in estimate([1.0], [0.5], [0.0]).refusal


def test_a_policy_whose_choice_exploration_never_showed_is_not_estimated() -> None:
    """Greedy rounds where the target chooses another product, and no explored round of
    its choice: the rounds where both agree would look like a large sample."""
    p = np.r_[np.full(200, 0.9), np.full(20, 0.01)]
    chosen = np.r_[np.ones(150, dtype=bool), np.zeros(70, dtype=bool)]
    result = estimate_choice(np.ones(220), p, chosen)
    assert not result.ok and "never showed its choice" in result.refusal
    assert result.ess > 100  # what the plain ESS rule would have let through


def test_the_largest_weight_widens_the_upper_bound() -> None:
    counts = np.array([1.0, 0.0, 1.0, 0.0])
    weights = np.full(4, 0.25)
    low, high = weighted_poisson_interval(counts, weights, 0.25)
    assert 0 < low < 0.5 < high
    assert weighted_poisson_interval(counts, weights, 2.5)[1] > high
    assert weighted_poisson_interval(np.zeros(4), weights, 0.25)[0] == 0.0


def test_rewards_count_the_slot_product_within_the_window_only() -> None:
    rounds = [Round("a", "P1", 0.9, SENT), Round("b", "P2", 0.05, SENT)]

    def click(customer: str, product: str, hours: float) -> Event:
        return Event(
            customer_id=customer,
            product_id=product,
            type=EventType.click,
            timestamp=SENT + timedelta(hours=hours),
        )

    window = timedelta(days=7)
    assert rewards(rounds, [click("a", "P1", 2)], window).tolist() == [1.0, 0.0]
    assert rewards(rounds, [click("a", "P2", 2), click("b", "P1", 2)], window).sum() == 0
    assert rewards(rounds, [click("b", "P2", 24 * 8), click("b", "P2", -1)], window).sum() == 0


def test_rounds_are_the_sent_customers_whose_last_slot_logged_a_propensity() -> None:
    picks = {
        "a": (["P1", "P2", "P3"], ["source=als;top=x", "fallback=popular", "explore(p=0.01)"]),
        "b": (["P4", "P5"], ["source=als;top=x", "source=cooc;top=y;p=0.95"]),
        "c": (["P6"], ["fallback=popular"]),  # before propensities were logged
        "d": (["P7"], ["explore(p=0.2)"]),  # not sent
    }
    sent = {"a": SENT, "b": SENT, "c": SENT}
    rounds = logged_rounds(picks, sent)
    assert [(r.customer_id, r.product_id, r.propensity) for r in rounds] == [
        ("a", "P3", 0.01),
        ("b", "P5", 0.95),
    ]


def test_the_report_names_no_customer_and_compares_like_with_like() -> None:
    rng = np.random.default_rng(5)
    rounds = [Round(f"C{i:06d}", f"P{i % 7}", 0.96 if i % 10 else 0.02, SENT) for i in range(400)]
    clicks = [
        Event(
            customer_id=r.customer_id,
            product_id=r.product_id,
            type=EventType.click,
            timestamp=SENT + timedelta(hours=1),
        )
        for r in rounds
        if rng.random() < 0.2
    ]
    same = counterfactual(
        "spring",
        rounds,
        {r.customer_id: r.product_id for r in rounds if is_greedy(r.propensity)},
        model_version="rc3-a",
        evaluated_version="rc3-a",
        served_versions=["rc3-a"],
        sends=410,
        clicks=clicks,
        purchases=None,
        attribution=timedelta(days=7),
    )
    assert same.model is not None and same.served is not None
    assert same.model.clicks == same.served.clicks and same.agreement == 1.0
    assert same.model.conversions is None
    text = same.to_markdown() + str(same.to_dict())
    assert "C000" not in text
    assert "rc3-a" in text and "ESS" in text and "400 of 410 sends" in text
    nothing = counterfactual(
        "spring",
        [],
        {},
        model_version="rc3-a",
        evaluated_version="rc3-a",
        served_versions=[],
        sends=3,
        clicks=[],
        purchases=[],
        attribution=timedelta(days=7),
    )
    assert nothing.model is None and "cannot be estimated: no logged round" in nothing.to_markdown()


def test_every_served_pick_logs_the_propensity_of_its_last_slot(
    shop: SyntheticShop, fitted: Pipeline
) -> None:
    customers = list(shop.customer_ids[:200])
    eps = 0.3
    picks = serve(fitted, customers, n=3, now=shop.now, rules=Rules(epsilon=eps))
    logged = [logged_propensity(p.reasons[-1]) for p in picks.values()]
    assert all(x is not None for x in logged)
    explored = [p.reasons[-1].startswith("explore(") for p in picks.values()]
    for x, e in zip(logged, explored, strict=True):
        assert x is not None
        # Greedy: 1 − ε + ε/m; explored: ε/m (or the greedy item's, drawn).
        assert (1 - eps < x <= 1) if not e else (x <= eps or x > 1 - eps)
    # Only the last slot carries one; the campaign summary's counts are unchanged.
    assert not any(logged_propensity(r) for p in picks.values() for r in p.reasons[:-1])
    _, kinds = reason_counts(picks)
    assert sum(kinds.values()) == sum(len(p.reasons) for p in picks.values())
    assert not any(";p=" in kind for kind in kinds)
    plain = serve(fitted, customers, n=3, now=shop.now, rules=Rules(epsilon=0.0))
    assert not any(logged_propensity(r) for p in plain.values() for r in p.reasons)
    # The greedy products are the same with or without exploration.
    greedy = [c for c, x in zip(picks, logged, strict=True) if x is not None and x > 0.5]
    assert all(picks[c].product_ids == plain[c].product_ids for c in greedy)


def test_campaign_picks_keep_the_exploration_slot(shop: SyntheticShop, fitted: Pipeline) -> None:
    eps = 0.5
    picks = serve_current(
        fitted,
        shop.products,
        shop.events,
        list(shop.customer_ids[:300]),
        n=3,
        now=shop.now,
        rules=Rules(epsilon=eps),
    )
    logged = [logged_propensity(p.reasons[-1]) for p in picks.values()]
    assert all(x is not None for x in logged)
    explored = sum(p.reasons[-1].startswith("explore(") for p in picks.values())
    assert abs(explored / len(picks) - eps) < 0.1
