"""Off-policy evaluation: what another policy would have earned, from a campaign's log.

A *round* is one mailed customer whose pick logged the propensity of its last slot (the
exploration slot, `recs.explore`): the product shown there, the probability the logging
policy gave it, and the reward — a click on that product in the campaign's tracking, or
a purchase of it, within the attribution window of the send. The propensity is in the
slot's reason: `explore(p=0.0125)` for an explored product, `…;p=0.9625` appended to the
reason of the greedy product when the slot did not explore (`recs.pick.serve`, whenever
ε > 0). Picks without one (ε = 0, or logged before propensities were) are not rounds.

A *target* policy gives each round's logged product a probability π. The target of
`reelcast report --counterfactual` is deterministic: the model's own choice for the last
slot, without exploration (π = 1 for it, 0 for any other product), so the estimate is
the click rate of the slot had it shown that model's choice to the same customers.
Beside it the same estimator values the served model's greedy choice (the logged
product is greedy exactly when its propensity exceeds ½, since campaigns explore at
ε ≤ 0.5: greedy 1 − ε + ε/m ≥ ½ + ε/m, explored ε/m ≤ ½): a like-for-like comparison.

Estimators, w = π / p (Horvitz–Thompson weights):

- IPS = mean(r·w), unbiased;
- SNIPS = Σ r·w / Σ w, a weighted mean (biased by O(1/n), lower variance, in [0, 1]);
- ESS = (Σ w)² / Σ w² (Kish): how many on-policy rounds the data is worth.

Intervals (95 %): Fay and Feuer's gamma interval for a weighted sum of Poisson counts
(`weighted_poisson_interval`), with the weights w/n (IPS) or w/Σw (SNIPS), clipped to
[0, 1]. Where the target differs from the served model, its value rests on a handful of
explored rounds of weight about m/ε; the normal interval with the sample variance then
covered the truth in only 80 % of simulated campaigns (38 % for conversions), the gamma
interval in 99 % (`bench/evalkit/ope_sim.py`): conservative, and wide at small ESS.

No estimate is given (a `refusal` says why) without rounds, when no logged product is
one the target would show, when the ESS is below `MIN_ESS`, or when the target differs
from the served model on greedy rounds and exploration never showed its choice (the
rounds where both agree would pass for a large sample). A mean weight well below 1
(`Estimate.lacks_support`) says the target often chooses products the logging policy
could (nearly) never show — blocked, out of stock, outside its candidate pool — whose
value no estimator can see.

Pure functions over values; nothing here names a customer in its output.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from recs.explore import propensity_marker
from retail.types import Event, EventType

__all__ = [
    "MIN_ESS",
    "Counterfactual",
    "Estimate",
    "PolicyValue",
    "Round",
    "counterfactual",
    "estimate",
    "estimate_choice",
    "is_greedy",
    "logged_propensity",
    "logged_rounds",
    "propensity_marker",
    "rewards",
    "weighted_poisson_interval",
]

#: below this effective sample size no estimate is given
MIN_ESS = 30.0
_EXPLORED = re.compile(r"explore\(p=([0-9.eE+-]+)\)")
_MARKED = re.compile(r";p=([0-9.eE+-]+)$")


def logged_propensity(reason: str) -> float | None:
    """The logging policy's probability of the slot's product, from its reason; None when
    the reason carries none (not an exploration slot, or logged without propensities)."""
    found = _EXPLORED.fullmatch(reason) or _MARKED.search(reason)
    if found is None:
        return None
    value = float(found.group(1))
    return value if 0.0 < value <= 1.0 else None


def is_greedy(propensity: float) -> bool:
    """Whether a logged slot showed the logging model's own choice (see the module's
    docstring: exact for ε ≤ 0.5, which campaigns enforce)."""
    return propensity > 0.5


# ---------------------------------------------------------------------------- estimators


@dataclass(frozen=True)
class Estimate:
    """A policy's value (a rate) estimated from logged rounds, or why it cannot be."""

    rounds: int
    #: rounds whose logged product the target policy would show too (π > 0)
    matched: int
    #: effective sample size, (Σw)² / Σw²
    ess: float
    ips: float
    ips_low: float
    ips_high: float
    snips: float
    snips_low: float
    snips_high: float
    #: empty when the estimate stands; else "cannot be estimated: …"
    refusal: str = ""
    #: Σw / rounds, 1 in expectation when the logging policy could show everything the
    #: target shows; well below 1: part of the target's choices were (nearly) never
    #: logged, which IPS counts as earning nothing and SNIPS as earning like the rest
    mean_weight: float = math.nan
    #: its standard error
    mean_weight_se: float = math.nan

    @property
    def lacks_support(self) -> bool:
        """Whether the weights average below 1 by more than three standard errors (see
        `mean_weight`): a shortfall exploration's own noise hardly ever makes."""
        return self.mean_weight + 3 * self.mean_weight_se < 1

    @property
    def ok(self) -> bool:
        """Whether the data supports an estimate."""
        return not self.refusal

    def to_dict(self) -> dict[str, object]:
        """JSON-able; the rates are None when refused."""
        data: dict[str, object] = asdict(self)
        if not self.ok:
            for name in ("ips", "ips_low", "ips_high", "snips", "snips_low", "snips_high"):
                data[name] = None
        data["ess"] = round(self.ess, 1)
        for name in ("mean_weight", "mean_weight_se"):
            value = getattr(self, name)
            data[name] = None if not math.isfinite(value) else round(value, 3)
        return data


def estimate(
    rewards: Sequence[float] | np.ndarray,
    propensities: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    *,
    largest_weight: float | None = None,
    level: float = 0.95,
    min_ess: float = MIN_ESS,
) -> Estimate:
    """IPS and SNIPS estimates of the target policy's mean reward, with intervals.

    Per round: the reward (0 or 1, or any value in [0, 1]), the logging policy's
    probability of the logged action (> 0) and the target policy's probability of it.
    `largest_weight`: the largest weight π/p a round could have carried, matched or not
    (default: the largest among the matched rounds); it widens the upper bounds for what
    the heavy, rarely matched rounds may hold (see `weighted_poisson_interval`).
    Refuses (the numbers still computed, for the record) when there is no round, no
    logged action the target would take, or an ESS below `min_ess`.
    """
    r = np.asarray(rewards, dtype=np.float64)
    p = np.asarray(propensities, dtype=np.float64)
    pi = np.asarray(target, dtype=np.float64)
    if not len(r) == len(p) == len(pi):
        raise ValueError(f"one reward, propensity and target each: {len(r)}, {len(p)}, {len(pi)}")
    if len(p) and (p.min() <= 0 or p.max() > 1):
        raise ValueError("logged propensities must be in (0, 1]")
    n = len(r)
    if n == 0:
        return _refused(0, 0, 0.0, "cannot be estimated: no logged round")
    w = pi / p
    total = float(w.sum())
    matched = int((pi > 0).sum())
    if total <= 0:
        return _refused(
            n, 0, 0.0, "cannot be estimated: no logged round shows what the policy would show"
        )
    ess = total * total / float((w * w).sum())
    biggest = max(float(w.max()), largest_weight or 0.0)
    ips = float((r * w).sum()) / n
    snips = float((r * w).sum()) / total
    ips_low, ips_high = weighted_poisson_interval(r, w / n, biggest / n, level)
    snips_low, snips_high = weighted_poisson_interval(r, w / total, biggest / total, level)
    refusal = ""
    if ess < min_ess:
        refusal = (
            # Rounded down: an ESS of 29.97 must not read "30.0 < 30".
            f"cannot be estimated: too little overlap (effective sample size "
            f"{math.floor(ess * 10) / 10:.1f} "
            f"< {min_ess:g}; {matched} of {n} logged rounds show what the policy would show)"
        )
    return Estimate(
        rounds=n,
        matched=matched,
        ess=ess,
        ips=ips,
        ips_low=_unit(ips_low),
        ips_high=_unit(ips_high),
        snips=snips,
        snips_low=_unit(snips_low),
        snips_high=_unit(snips_high),
        refusal=refusal,
        mean_weight=total / n,
        mean_weight_se=float(w.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf,
    )


def estimate_choice(
    rewards: Sequence[float] | np.ndarray,
    propensities: Sequence[float] | np.ndarray,
    chosen: Sequence[bool] | np.ndarray,
    *,
    level: float = 0.95,
    min_ess: float = MIN_ESS,
) -> Estimate:
    """`estimate` for a deterministic target (π = 1 for its choice) on ε-greedy logs:
    `chosen` says, per round, whether the logged product is the target's choice.

    Where the target's choice differs from the served model's (a greedy round it does
    not choose), only explored rounds can show its choice, each carrying a weight of
    about m/ε: the largest logged 1/p of an explored round stands for the weight such a
    customer's round would carry, and with no explored round of its choice at all there
    is no estimate (however large the ESS of the rounds where the two agree).
    """
    p = np.asarray(propensities, dtype=np.float64)
    hit = np.asarray(chosen, dtype=bool)
    greedy = p > 0.5
    largest = None
    differs = bool((greedy & ~hit).any())
    if differs:
        explored = ~greedy
        if not (explored & hit).any():
            estimate_ = estimate(rewards, p, hit.astype(np.float64), level=level, min_ess=min_ess)
            shown = int((greedy & ~hit).sum())
            return replace(
                estimate_,
                refusal=f"cannot be estimated: the policy would show another product than "
                f"the served model in {shown} of {int(greedy.sum())} greedy rounds, and "
                f"exploration never showed its choice there",
            )
        largest = float((1 / p[explored]).max())
    return estimate(
        rewards, p, hit.astype(np.float64), largest_weight=largest, level=level, min_ess=min_ess
    )


def weighted_poisson_interval(
    counts: np.ndarray, weights: np.ndarray, largest_weight: float, level: float = 0.95
) -> tuple[float, float]:
    """Fay and Feuer's gamma interval for Σ weights·counts, counts Poisson (Statistics in
    Medicine 1997;16:791): conservative for Bernoulli counts, and it stays honest when the
    sum rests on a few heavy weights, where the normal interval does not (a handful of
    explored rounds carry the value of every customer the target would treat
    differently). `largest_weight`: the largest weight a count could have had."""
    from scipy.stats import gamma

    alpha = 1 - level
    y = float((weights * counts).sum())
    v = float((weights * weights * counts).sum())
    low = 0.0 if y <= 0 else float(gamma.ppf(alpha / 2, y * y / v, scale=v / y))
    wm = max(largest_weight, 0.0)
    if wm <= 0:
        return low, y
    high = float(
        gamma.ppf(1 - alpha / 2, (y + wm) ** 2 / (v + wm * wm), scale=(v + wm * wm) / (y + wm))
    )
    return low, high


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


def _refused(rounds: int, matched: int, ess: float, why: str) -> Estimate:
    nan = math.nan
    return Estimate(rounds, matched, ess, nan, nan, nan, nan, nan, nan, refusal=why)


# ---------------------------------------------------------------------------- rounds


@dataclass(frozen=True)
class Round:
    """One mailed customer's exploration slot. `customer_id` stays in memory: nothing
    built from rounds prints it."""

    customer_id: str
    product_id: str
    propensity: float
    sent_at: datetime


def logged_rounds(
    picks: Mapping[str, tuple[Sequence[str], Sequence[str]]], sent: Mapping[str, datetime]
) -> list[Round]:
    """The rounds of a campaign: each sent customer (`sent`: customer id → send time)
    whose pick (`picks`: customer id → (products, reasons)) logged the propensity of its
    last slot, in the order of `sent`."""
    rounds = []
    for customer_id, at in sent.items():
        pick = picks.get(customer_id)
        if pick is None or not pick[0] or len(pick[0]) != len(pick[1]):
            continue
        propensity = logged_propensity(pick[1][-1])
        if propensity is not None:
            rounds.append(Round(customer_id, pick[0][-1], propensity, at))
    return rounds


def rewards(rounds: Sequence[Round], events: Iterable[Event], window: timedelta) -> np.ndarray:
    """1.0 for each round whose customer has an event (of any type given: pass clicks or
    purchases) on the round's product in [send, send + window), else 0.0."""
    moments: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for event in events:
        if event.product_id is not None:
            moments[event.customer_id, event.product_id].append(event.timestamp)
    return np.array(
        [
            float(
                any(
                    r.sent_at <= t < r.sent_at + window
                    for t in moments.get((r.customer_id, r.product_id), ())
                )
            )
            for r in rounds
        ]
    )


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class PolicyValue:
    """A policy's click rate and conversion rate (None: no purchases to count)."""

    clicks: Estimate
    conversions: Estimate | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "clicks": self.clicks.to_dict(),
            "conversions": None if self.conversions is None else self.conversions.to_dict(),
        }


@dataclass
class Counterfactual:
    """What a model would have earned in a campaign's exploration slot, against what the
    served model's own choices earned, both estimated from the same logged rounds."""

    campaign: str
    #: the model version asked about, and the one evaluated (the same, or that model's
    #: settings re-fitted on its own events before the campaign: see `notes`)
    model_version: str
    evaluated_version: str
    #: the served (logging) model's version(s), from the audit log
    served_versions: list[str]
    sends: int
    rounds: int
    attribution_days: float
    #: the target model's choice, without exploration
    model: PolicyValue | None
    #: the served model's choice, without exploration
    served: PolicyValue | None
    #: what the exploration slot earned as logged (exploration included): mean rewards
    observed_clicks: float | None = None
    observed_conversions: float | None = None
    #: rounds where the target model's choice is the served model's logged greedy choice
    agreement: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-able, counts and rates only."""
        data = {k: v for k, v in asdict(self).items() if k not in ("model", "served")}
        data["model"] = None if self.model is None else self.model.to_dict()
        data["served"] = None if self.served is None else self.served.to_dict()
        return data

    def to_markdown(self) -> str:
        """The estimate as a short markdown section (what the CLI and the gate show)."""
        lines = [
            f"## Counterfactual: model `{self.model_version}` on campaign `{self.campaign}`",
            "",
        ]
        if self.evaluated_version != self.model_version:
            lines += [f"Evaluated as `{self.evaluated_version}` (see notes).", ""]
        lines += [
            f"Rounds (mailed customers whose exploration slot logged its propensity): "
            f"{self.rounds} of {self.sends} sends. Reward: a click on (a purchase of) the "
            f"slot's product within {self.attribution_days:g} days of the send. "
            f"Intervals: 95 %.",
            "",
        ]
        if self.model is not None and self.served is not None:
            lines += [
                "| last slot shows | metric | SNIPS [95 % CI] | IPS [95 % CI] | ESS | matched |",
                "|---|---|---|---|---|---|",
            ]
            for label, value in (
                (f"model `{self.evaluated_version}`", self.model),
                (f"served {', '.join(f'`{v}`' for v in self.served_versions)}", self.served),
            ):
                for metric, est in (
                    ("click rate", value.clicks),
                    ("conversion", value.conversions),
                ):
                    if est is not None:
                        lines.append(f"| {label} | {metric} | {_row(est)} |")
            lines.append("")
            refusals = sorted(
                {
                    est.refusal
                    for value in (self.model, self.served)
                    for est in (value.clicks, value.conversions)
                    if est is not None and est.refusal
                }
            )
            lines += [f"- {why}" for why in refusals]
            clicks = self.model.clicks
            if clicks.ok and clicks.lacks_support:
                lines.append(
                    f"- the model's weights average {clicks.mean_weight:.2f} where they should "
                    "average 1: some of its choices were (nearly) never eligible for "
                    "exploration, so IPS counts them as earning nothing and SNIPS as earning "
                    "like the rest; the truth may lie outside both intervals"
                )
        if self.observed_clicks is not None:
            observed = (
                f"- as logged (exploration included): click rate {_pct(self.observed_clicks)}"
            )
            if self.observed_conversions is not None:
                observed += f", conversion {_pct(self.observed_conversions)}"
            lines.append(observed)
        if self.agreement is not None:
            lines.append(
                f"- the model would show the served model's own choice to "
                f"{_pct(self.agreement)} of the rounds that logged it"
            )
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _row(est: Estimate) -> str:
    if not est.ok:
        return f"— | — | {est.ess:.1f} | {est.matched}/{est.rounds}"
    return (
        f"{_pct(est.snips)} [{_pct(est.snips_low)}, {_pct(est.snips_high)}] | "
        f"{_pct(est.ips)} [{_pct(est.ips_low)}, {_pct(est.ips_high)}] | "
        f"{est.ess:.1f} | {est.matched}/{est.rounds}"
    )


def counterfactual(
    campaign: str,
    rounds: Sequence[Round],
    choices: Mapping[str, str],
    *,
    model_version: str,
    evaluated_version: str,
    served_versions: Sequence[str],
    sends: int,
    clicks: Iterable[Event],
    purchases: Iterable[Event] | None,
    attribution: timedelta,
    min_ess: float = MIN_ESS,
) -> Counterfactual:
    """The campaign's counterfactual from plain values: `choices` maps a round's customer
    id to the product the target model would show in the last slot (absent: nothing, so
    it earns nothing there); `clicks` are the campaign's click events (people only);
    `purchases` purchase events from any source, None when there are none to count."""
    p = np.array([r.propensity for r in rounds])
    target = np.array([choices.get(r.customer_id) == r.product_id for r in rounds], dtype=bool)
    served = np.array([is_greedy(r.propensity) for r in rounds], dtype=bool)
    clicked = rewards(rounds, (e for e in clicks if e.type is EventType.click), attribution)
    bought = (
        None
        if purchases is None
        else rewards(rounds, (e for e in purchases if e.type is EventType.purchase), attribution)
    )

    def value(chosen: np.ndarray) -> PolicyValue:
        return PolicyValue(
            estimate_choice(clicked, p, chosen, min_ess=min_ess),
            None if bought is None else estimate_choice(bought, p, chosen, min_ess=min_ess),
        )

    greedy = served
    notes = (
        []
        if rounds
        else [
            "cannot be estimated: no logged round (no sent customer's pick logged the "
            "propensity of its last slot: the campaign ran without exploration, or before "
            "propensities were logged)"
        ]
    )
    return Counterfactual(
        campaign=campaign,
        model_version=model_version,
        evaluated_version=evaluated_version,
        served_versions=sorted(set(served_versions)),
        sends=sends,
        rounds=len(rounds),
        attribution_days=attribution.total_seconds() / 86400,
        model=value(target) if rounds else None,
        served=value(served) if rounds else None,
        observed_clicks=float(clicked.mean()) if len(rounds) else None,
        observed_conversions=None if bought is None or not len(rounds) else float(bought.mean()),
        agreement=float(target[greedy].mean()) if greedy.any() else None,
        notes=notes,
    )
