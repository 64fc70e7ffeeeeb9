"""Simulated campaigns with known click probabilities, for off-policy evaluation.

Each run draws 5,000 customers, each with a pool of eligible products (5 to 20 of 60) and a
known click probability for every one of them (a logit-normal spread around a base
rate). The logging model and a target model each rank the pool by the true logits plus
their own noise; the logging policy is the campaign's real exploration
(`recs.explore.explore`, ε-greedy over the pool, its propensity logged in the slot's
reason as `recs.pick.serve` writes it and read back with `recs.offpolicy`). Clicks are
drawn from the true probability of the product shown; a purchase follows a click with
a fixed chance, so conversions are rarer rewards.

The truths the intervals must cover, over the run's customers:

- target: mean over customers of the click probability of the target model's choice;
- identical: the same for the logging model's own choice (a target identical to the
  logging model, without its exploration);
- on-policy: the logging policy itself (π = p, every weight 1): its estimate must equal
  the logged mean click rate exactly.

`ope_coverage` is what `bench/lift.py --json` reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recs.explore import explore
from recs.offpolicy import (
    Estimate,
    estimate,
    estimate_choice,
    is_greedy,
    logged_propensity,
    propensity_marker,
)


@dataclass(frozen=True)
class World:
    """One kind of simulated campaign."""

    customers: int = 5000
    products: int = 60
    pool_min: int = 5
    pool_max: int = 20
    epsilon: float = 0.2
    base_ctr: float = 0.02
    #: spread of the true click logits around the base rate (standard deviation)
    spread: float = 1.0
    #: how far each model's scores are from the true logits (standard deviation)
    logging_noise: float = 1.0
    target_noise: float = 0.5
    #: P(purchase | click)
    buy_after_click: float = 0.2
    #: share of customers whose target choice lies outside their pool: never loggable
    #: (a blocked or out-of-stock product, a wider pool), to check `lacks_support`
    outside_pool: float = 0.0


@dataclass(frozen=True)
class Run:
    """One simulated campaign: the truths and the estimates of clicks and conversions."""

    target_truth: float
    target: Estimate
    target_conversion_truth: float
    target_conversion: Estimate
    identical_truth: float
    identical: Estimate
    on_policy: Estimate
    logged_mean: float


def _covers(est: Estimate, truth: float, which: str) -> bool:
    low, high = (est.snips_low, est.snips_high) if which == "snips" else (est.ips_low, est.ips_high)
    return low <= truth <= high


def simulate(world: World, run: int, seed: int = 0) -> Run:
    """One campaign of `world`, estimated with `recs.offpolicy.estimate`."""
    rng = np.random.default_rng([seed, run])
    n, k = world.customers, world.products
    base = np.log(world.base_ctr / (1 - world.base_ctr))
    logits = base + world.spread * rng.standard_normal((n, k))
    chance = 1 / (1 + np.exp(-logits))
    sizes = rng.integers(world.pool_min, world.pool_max + 1, n)
    order = np.argsort(rng.random((n, k)), axis=1)
    width = world.pool_max
    pool = np.where(np.arange(width)[None, :] < sizes[:, None], order[:, :width], -1)
    rows = np.arange(n)

    def greedy(noise: float) -> np.ndarray:
        score = logits + noise * rng.standard_normal((n, k))
        in_pool = np.take_along_axis(score, np.maximum(pool, 0), axis=1)
        in_pool = np.where(pool >= 0, in_pool, -np.inf)
        return pool[rows, np.argmax(in_pool, axis=1)]

    logging, target = greedy(world.logging_noise), greedy(world.target_noise)
    if world.outside_pool > 0:
        # The first product not in the pool (pools are the head of a random order).
        away = rng.random(n) < world.outside_pool
        target = np.where(away, order[rows, sizes], target)
    ids = [f"ope{seed}-{run}-{i}" for i in range(n)]
    explores, position, propensity = explore(
        ids, pool, logging[:, None], epsilon=world.epsilon, seed=seed * 100_003 + run
    )
    shown = np.where(explores, pool[rows, np.maximum(position, 0)], logging)
    # The propensity as a campaign logs it, read back from the reason.
    reasons = [
        f"explore(p={p:.4g})" if e else f"source=als;top=x{propensity_marker(p)}"
        for e, p in zip(explores.tolist(), propensity.tolist(), strict=True)
    ]
    logged = np.array([logged_propensity(reason) for reason in reasons], dtype=np.float64)
    clicks = (rng.random(n) < chance[rows, shown]).astype(np.float64)
    buys = clicks * (rng.random(n) < world.buy_after_click)
    greedy_logged = np.array([is_greedy(p) for p in logged])
    assert (greedy_logged == (shown == logging)).all()
    hits = shown == target
    return Run(
        target_truth=float(chance[rows, target].mean()),
        target=estimate_choice(clicks, logged, hits),
        target_conversion_truth=float(chance[rows, target].mean() * world.buy_after_click),
        target_conversion=estimate_choice(buys, logged, hits),
        identical_truth=float(chance[rows, logging].mean()),
        identical=estimate_choice(clicks, logged, greedy_logged),
        on_policy=estimate(clicks, logged, logged),
        logged_mean=float(clicks.mean()),
    )


def ope_coverage(runs: int, seed: int = 0, world: World | None = None) -> dict[str, float | int]:
    """Over `runs` simulated campaigns: the share of runs whose 95 % interval covers the
    true click rate of the target model (`coverage` = `ope_coverage`: SNIPS, the estimate
    the report leads with; `ips_coverage` beside it), the same for conversions and for a
    target identical to the logging model, the mean ESS, interval width and estimate,
    how many runs were refused (and how many estimated ones were flagged as lacking
    support), and whether the on-policy estimate always equals the logged mean.
    Coverage counts the estimated runs."""
    world = world or World()
    done = [simulate(world, run, seed) for run in range(runs)]
    kept = [r for r in done if r.target.ok]

    def share(hits: list[bool]) -> float:
        return round(float(np.mean(hits)), 4) if hits else float("nan")

    identical = [r for r in done if r.identical.ok]
    conversion = [r for r in done if r.target_conversion.ok]
    covered = share([_covers(r.target, r.target_truth, "snips") for r in kept])
    return {
        "runs": runs,
        "coverage": covered,  # what bench/lift.py reads
        "ope_coverage": covered,
        "ips_coverage": share([_covers(r.target, r.target_truth, "ips") for r in kept]),
        "conversion_coverage": share(
            [_covers(r.target_conversion, r.target_conversion_truth, "snips") for r in conversion]
        ),
        "identical_coverage": share(
            [_covers(r.identical, r.identical_truth, "snips") for r in identical]
        ),
        "identical_ips_coverage": share(
            [_covers(r.identical, r.identical_truth, "ips") for r in identical]
        ),
        "on_policy_exact": all(
            r.on_policy.ok
            and abs(r.on_policy.snips - r.logged_mean) < 1e-9
            and abs(r.on_policy.ips - r.logged_mean) < 1e-9
            for r in done
        ),
        "refused": runs - len(kept),
        "support_flagged": sum(r.target.lacks_support for r in kept),
        "mean_width": round(
            float(np.mean([r.target.snips_high - r.target.snips_low for r in kept])), 4
        )
        if kept
        else float("nan"),
        "mean_ess": round(float(np.mean([r.target.ess for r in done])), 1),
        "mean_target_truth": round(float(np.mean([r.target_truth for r in done])), 4),
        "mean_target_snips": round(float(np.mean([r.target.snips for r in kept])), 4)
        if kept
        else float("nan"),
        "mean_identical_truth": round(float(np.mean([r.identical_truth for r in done])), 4),
        "mean_logged_ctr": round(float(np.mean([r.logged_mean for r in done])), 4),
    }
