"""The report's lift, checked by simulation: campaigns with a known effect (or none),
measured by `build_report` as `reelcast report` does (see bench/evalkit/lift_sim.py)."""

from __future__ import annotations

import pytest

from bench.evalkit.lift_sim import Scenario, coverage

pytestmark = pytest.mark.slow


def test_null_campaigns_intervals_cover_zero_at_their_level() -> None:
    result = coverage(Scenario(customers=1000), runs=1000, seed=3)
    assert result["mean_truth"] == 0.0
    assert 0.93 <= result["coverage"] <= 0.97


def test_a_known_effect_is_covered_when_the_checks_drop_the_likeliest_buyers() -> None:
    # 20 % of the treated are never mailed, the likelier buyers more often: intent to
    # treat still covers the true (diluted) effect; the mailed-only comparison does not.
    scenario = Scenario(customers=1000, relative_lift=0.3, qc_drop=0.2)
    result = coverage(scenario, runs=500, seed=4)
    truth = result["mean_truth"]
    assert truth > 0
    assert 0.92 <= result["coverage"] <= 0.98
    assert abs(result["mean_estimate"] - truth) < truth / 4  # unbiased, within noise
    # Mailed only: the likeliest buyers are gone from the treated side, so it reads as
    # if the campaign had done (almost) nothing.
    assert result["mean_per_protocol"] < truth / 2


def test_a_limit_draws_treated_and_control_alike() -> None:
    # --limit takes a random 300 treated and the holdout of the same draw: no bias.
    result = coverage(Scenario(customers=2000, limit=300), runs=400, seed=5)
    assert 0.92 <= result["coverage"] <= 0.98
