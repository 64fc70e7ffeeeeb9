"""Are the report's intervals honest? Simulated campaigns with a known effect.

Each simulated campaign is measured by the product's own report (`delivery.report`,
intent to treat over the run's selection, as `reelcast report` does; see
`bench.evalkit.lift_sim`). Figures:

- null_coverage: share of campaigns without effect whose 95 % interval covers zero
  (target 0.93–0.97);
- effect_coverage: the same for campaigns with a known effect (+30 % relative) where the
  creative checks drop 20 % of the treated customers, the likelier buyers more often;
- power_10pct: share of 20,000-customer campaigns (20 % holdout, 5 % base conversion)
  with a +10 % relative effect whose interval excludes zero, and the customers such a
  campaign would need for 80 % power (normal approximation);
- ope_coverage: share of simulated logs where the off-policy (counterfactual) estimate's
  interval covers the new policy's true click rate (`bench.evalkit.ope_sim`).

The baseline measured in the same run is the comparison the report made before: mailed
customers only, each from their own send (`per_protocol_coverage` on the same effect
campaigns); the ratio is intent-to-treat coverage over it.

    python bench/lift.py [--runs 1000] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

# Run as a script, this file's folder comes first on the import path (bench/recs.py would
# hide the `recs` package); the repository root goes first instead.
_HERE = Path(__file__).resolve().parent
REPO = _HERE.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() not in (_HERE, REPO)]

from bench.evalkit.lift_sim import Scenario, coverage  # noqa: E402
from bench.evalkit.ope_sim import ope_coverage  # noqa: E402

Z95, Z80 = 1.959963984540054, 0.8416212335729143


def customers_for_power(base: float, relative_lift: float, holdout_share: float) -> int:
    """Customers a campaign needs for 80 % power at the 5 % level (two-sided, normal
    approximation of two proportions, the holdout `holdout_share` of them)."""
    p1, p0 = base * (1 + relative_lift), base
    variance = p1 * (1 - p1) / (1 - holdout_share) + p0 * (1 - p0) / holdout_share
    return math.ceil(variance * ((Z95 + Z80) / (p1 - p0)) ** 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated campaigns each")
    parser.add_argument("--quick", action="store_true", help="200 runs each, smaller power run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    runs = 200 if args.quick else args.runs
    started = time.perf_counter()

    null = coverage(Scenario(customers=2000), runs, args.seed)
    effect = coverage(Scenario(customers=2000, relative_lift=0.3, qc_drop=0.2), runs, args.seed + 1)
    power_runs = max(runs // 5, 40)
    power_customers = 5000 if args.quick else 20000
    power = coverage(
        Scenario(customers=power_customers, relative_lift=0.1), power_runs, args.seed + 2
    )
    ope = ope_coverage(runs, args.seed + 3)
    needed = customers_for_power(0.05, 0.1, 0.2)

    result = {
        "runs": runs,
        "null_coverage": round(null["coverage"], 4),
        "effect_coverage": round(effect["coverage"], 4),
        "per_protocol_coverage": round(effect["per_protocol_coverage"], 4),
        "ratio_to_per_protocol": round(effect["coverage"] / effect["per_protocol_coverage"], 3),
        "effect_truth_pts": round(100 * effect["mean_truth"], 3),
        "effect_estimate_pts": round(100 * effect["mean_estimate"], 3),
        "per_protocol_estimate_pts": round(100 * effect["mean_per_protocol"], 3),
        "power_10pct": round(power["significant"], 4),
        "power_customers": power_customers,
        "power_runs": power_runs,
        "customers_for_80pct_power": needed,
        "ope_coverage": round(float(ope["coverage"]), 4),
        "ope": {k: v for k, v in ope.items() if k != "coverage"},
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"campaigns without effect, 95 % interval covers zero: {result['null_coverage']:.1%}")
    print(
        f"+30 % effect, 20 % dropped by checks: intent to treat covers the truth in "
        f"{result['effect_coverage']:.1%} (estimate {result['effect_estimate_pts']} points, "
        f"truth {result['effect_truth_pts']}); mailed only (the old report, baseline): "
        f"{result['per_protocol_coverage']:.1%} (estimate {result['per_protocol_estimate_pts']}"
        f" points); ratio {result['ratio_to_per_protocol']}"
    )
    print(
        f"power at +10 %: {result['power_10pct']:.1%} of {power_runs} campaigns of "
        f"{power_customers:,} customers; 80 % power needs about {needed:,} customers"
    )
    print(f"off-policy estimate covers the truth: {result['ope_coverage']:.1%}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
