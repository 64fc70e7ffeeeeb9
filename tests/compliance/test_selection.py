"""A run's part of its audience: a seeded random draw of treated and control together."""

from __future__ import annotations

import pytest

from compliance.audience import Holdout, Selection

POPULATION = [f"c{i:04d}" for i in range(2000)]
HOLDOUT = Holdout(0.2, "spring")
HELD = {c for c in POPULATION if HOLDOUT.contains(c)}


def test_without_a_limit_the_run_takes_everyone() -> None:
    treated, control = Selection().draw(POPULATION, HELD)
    assert set(treated) == set(POPULATION) - HELD and set(control) == HELD
    assert treated == [c for c in POPULATION if c not in HELD]  # file order


def test_a_limit_draws_treated_and_control_from_the_same_random_sample() -> None:
    treated, control = Selection(200, experiment="spring").draw(POPULATION, HELD)
    assert len(treated) == 200 and not set(treated) & HELD
    assert set(control) <= HELD
    # The control is the holdout's share of the same draw (≈ 0.2 / 0.8 of 200 = 50).
    assert 30 <= len(control) <= 75
    # Random, not the head of the file: drawn from all over it.
    positions = sorted(POPULATION.index(c) for c in treated)
    assert positions[-1] > 1500 and positions[0] < 500
    # The same campaign draws the same customers (re-runs); another draws others.
    assert Selection(200, experiment="spring").draw(POPULATION, HELD) == (treated, control)
    other, _ = Selection(200, experiment="summer").draw(POPULATION, HELD)
    assert len(set(other) & set(treated)) < 100


def test_file_order_takes_the_head_of_the_file_with_its_held_out_customers() -> None:
    treated, control = Selection(10, "file").draw(POPULATION, HELD)
    head = POPULATION[: POPULATION.index(treated[-1]) + 1]
    assert treated == [c for c in head if c not in HELD]
    assert control == [c for c in head if c in HELD]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Selection(0)
