"""Simulated campaigns with a known effect, measured by the product's own report.

Each run draws a population with varied purchase chances (a beta distribution around the
base rate), splits it with the campaign's real `Holdout` and `Selection` (a `--limit`
draw when asked), "mails" the treated customers the creative checks let through, and
draws purchases: a mailed customer buys with their chance × (1 + lift), anyone else with
their chance alone. `delivery.report.build_report` then measures the lift from the sends
and purchases, as `reelcast report` does.

QC drops (`qc_drop`) are not at random: the customers most likely to buy fail the checks
more often (long names, many products...), which is what makes a mailed-only comparison
lie. The truth an interval must cover is the intent-to-treat effect on the population:
mean over customers of chance × lift × P(mailed if assigned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from compliance.audience import Holdout, Selection
from delivery.report import Send, build_report
from retail.types import Event, EventType

ASSIGNED = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SENT = ASSIGNED + timedelta(hours=6)


@dataclass(frozen=True)
class Scenario:
    """One kind of simulated campaign."""

    customers: int = 2000
    holdout_share: float = 0.2
    base_rate: float = 0.05
    relative_lift: float = 0.0
    qc_drop: float = 0.0  # share of the assigned treated customers never mailed
    limit: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What one run's report said, against the truth."""

    truth: float  # the intent-to-treat effect, in conversion-rate points (0.01 = 1 point)
    estimate: float
    low: float
    high: float
    per_protocol: float | None  # the mailed-only estimate, when some were not mailed
    per_protocol_low: float | None
    per_protocol_high: float | None

    @property
    def covers(self) -> bool:
        return self.low <= self.truth <= self.high

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def per_protocol_covers(self) -> bool | None:
        if self.per_protocol_low is None or self.per_protocol_high is None:
            return None
        return self.per_protocol_low <= self.truth <= self.per_protocol_high


def simulate(scenario: Scenario, run: int, seed: int = 0) -> Outcome:
    """One campaign of `scenario`, measured by `build_report`."""
    rng = np.random.default_rng([seed, run])
    n = scenario.customers
    ids = [f"s{run}-{i}" for i in range(n)]
    concentration = 20.0
    chance = rng.beta(
        scenario.base_rate * concentration, (1 - scenario.base_rate) * concentration, n
    )
    # The likelier buyers fail the checks more often: a drop that is not at random.
    fail_weight = chance / chance.mean()
    fails = rng.random(n) < np.clip(scenario.qc_drop * fail_weight, 0, 1)
    experiment = f"sim-{seed}-{run}"
    holdout = Holdout(scenario.holdout_share, experiment, "sim")
    held = {c for c in ids if holdout.contains(c)}
    treated, _ = Selection(scenario.limit, experiment=experiment).draw(ids, held)
    index = {c: i for i, c in enumerate(ids)}
    mailed = {c for c in treated if not fails[index[c]]}
    lift = scenario.relative_lift
    buys = rng.random(n) < np.where(
        [c in mailed for c in ids], np.minimum(chance * (1 + lift), 1), chance
    )
    purchases = [
        Event(
            customer_id=c,
            type=EventType.purchase,
            timestamp=SENT + timedelta(hours=1 + (i % 48)),
        )
        for i, c in enumerate(ids)
        if buys[i]
    ]
    report = build_report(
        experiment,
        sends=[Send(c, SENT) for c in mailed],
        tracking=[],
        purchases=purchases,
        population=ids,
        holdout=holdout,
        selection=Selection(scenario.limit, experiment=experiment),
        assigned_at=ASSIGNED,
    )
    assert report.holdout is not None, report.notes
    # The truth over this run's groups' population: everyone could have been assigned.
    truth = float(np.mean((np.minimum(chance * (1 + lift), 1) - chance) * ~fails))
    lift_ci = report.holdout.lift
    pp = report.per_protocol
    return Outcome(
        truth,
        lift_ci.estimate,
        lift_ci.low,
        lift_ci.high,
        pp.lift.estimate if pp else None,
        pp.lift.low if pp else None,
        pp.lift.high if pp else None,
    )


def coverage(scenario: Scenario, runs: int, seed: int = 0) -> dict[str, float]:
    """Share of `runs` whose interval covers the truth, share significant, and the
    mailed-only comparison's coverage when there is one."""
    outcomes = [simulate(scenario, run, seed) for run in range(runs)]
    pp = [o.per_protocol_covers for o in outcomes if o.per_protocol_covers is not None]
    return {
        "coverage": sum(o.covers for o in outcomes) / runs,
        "significant": sum(o.significant for o in outcomes) / runs,
        "mean_truth": float(np.mean([o.truth for o in outcomes])),
        "mean_estimate": float(np.mean([o.estimate for o in outcomes])),
        "per_protocol_coverage": sum(pp) / len(pp) if pp else float("nan"),
        "mean_per_protocol": float(
            np.mean([o.per_protocol for o in outcomes if o.per_protocol is not None])
        )
        if pp
        else float("nan"),
    }
