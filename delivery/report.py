"""The campaign report: per-variant rates and the lift over the holdout, with intervals.

Pure functions over values (sends, events, customer ids) plus one thin loader that reads
them from the workspace. Definitions, so the numbers mean one thing:

- sends: emails in state `sent` (an `unknown` outcome is not counted as a send);
- opens: sent customers with an open *or a click* (clients that block images never
  fire the pixel, but a click proves the email was opened);
- clicks: sent customers with at least one click (landing page or product link);
  CTR = clicks / sends;
- machine traffic (HEAD requests, link scanners and previews, hits within seconds of
  delivery: see `delivery.traffic`) counts as neither an open nor a click; the report
  shows how many such hits there were (`machine_hits`, per reason);
- conversion: a customer with a purchase in [anchor, anchor + attribution window);
- lift, intent-to-treat: every customer *assigned* to treatment (eligible, not held out,
  within the run's selection: all, or its `--limit` draw) against every customer held
  out *of the same selection*, both over the same window opening at assignment (the
  campaign's holdout record in the audit log). Customers assigned but never mailed (no
  pick, a failed check, a send that failed or ended unknown) stay in the treated group:
  dropping them would compare a filtered group with an unfiltered one. The difference
  carries Newcombe's hybrid score interval (method 10 of Newcombe 1998); single rates
  carry Wilson score intervals;
- per protocol (mailed customers only, each from their own send) is shown beside it,
  labelled as biased: whatever kept a customer from being mailed may also bear on
  whether they buy;
- sample-ratio mismatch: a chi-square test of the holdout's size in the population that
  was split against the configured share; p < 0.001 means the split is broken and the
  lift should not be trusted.

Everything here is counts and rates: no customer id leaves this module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from scipy.stats import chisquare

from compliance.audience import Holdout, Selection
from compliance.audit import AuditLog
from compliance.pseudonym import pseudonymize
from delivery.events_store import TrackingEvents
from delivery.outbox import Outbox, OutboxState
from retail.types import Event, EventType
from storage.targets import Target, exists

Z95 = 1.959963984540054  # two-sided 95 %
SRM_ALPHA = 0.001  # the usual threshold: SRM checks run on every experiment
ONE_VARIANT = "all"
_MACHINE_REASONS = {
    "head": "HEAD requests",
    "agent": "from scanner or preview agents",
    "soon": "right after delivery",
}


# ---------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (no continuity correction); (0, 1) if n = 0."""
    if not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # Clamp rounding noise: at 0 or n successes the bound is exactly 0 or 1.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 − p2 (method 10, Stat Med 1998;17:873).

    Combines the two Wilson intervals; keeps to [-1, 1] and behaves at 0 and n.
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)


@dataclass(frozen=True)
class Rate:
    """successes / trials with its Wilson interval."""

    successes: int
    trials: int
    rate: float
    low: float
    high: float

    @classmethod
    def of(cls, successes: int, trials: int, z: float = Z95) -> Rate:
        low, high = wilson_interval(successes, trials, z)
        return cls(successes, trials, successes / trials if trials else 0.0, low, high)


@dataclass(frozen=True)
class Difference:
    """p1 − p2 with its Newcombe interval; `excludes_zero` says the interval is one-signed."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @classmethod
    def of(cls, a: Rate, b: Rate, z: float = Z95) -> Difference:
        low, high = newcombe_interval(a.successes, a.trials, b.successes, b.trials, z)
        return cls(a.rate - b.rate, low, high)


@dataclass(frozen=True)
class SampleRatioCheck:
    """Observed holdout size against the configured share (chi-square, 1 d.f.)."""

    population: int
    holdout: int
    expected_share: float
    chi2: float
    p_value: float
    mismatch: bool

    @property
    def observed_share(self) -> float:
        return self.holdout / self.population if self.population else 0.0


def sample_ratio_check(
    holdout: int, population: int, expected_share: float, alpha: float = SRM_ALPHA
) -> SampleRatioCheck:
    """Chi-square goodness of fit of (holdout, rest) to (share, 1 − share) of `population`.

    `mismatch` is True when p < `alpha`: the split did not happen as configured (a bug,
    a changed salt, customers lost on one side), so comparisons between the groups are
    not trustworthy.
    """
    if not 0 < expected_share < 1:
        raise ValueError(f"expected share must be in (0, 1), got {expected_share}")
    if not 0 <= holdout <= population:
        raise ValueError(f"need 0 <= holdout <= population, got {holdout}/{population}")
    if population == 0:
        return SampleRatioCheck(0, 0, expected_share, 0.0, 1.0, False)
    expected = [population * expected_share, population * (1 - expected_share)]
    result = chisquare([holdout, population - holdout], expected)
    chi2, p = float(result.statistic), float(result.pvalue)
    return SampleRatioCheck(population, holdout, expected_share, chi2, p, p < alpha)


# ----------------------------------------------------------------------- the report itself


@dataclass(frozen=True)
class Send:
    """One email that went out: to whom, when, and which variant it carried."""

    customer_id: str
    sent_at: datetime
    variant: str | None = None


@dataclass(frozen=True)
class VariantStats:
    """One subject/headline variant's funnel."""

    variant: str
    sends: int
    opens: Rate
    clicks: Rate  # the CTR: clickers / sends
    conversions: Rate
    unsubscribes: int


@dataclass(frozen=True)
class HoldoutComparison:
    """Treated against holdout (nothing sent) conversion, and the lift.

    Intent-to-treat (`kind` "intent-to-treat"): everyone assigned, from assignment. Per
    protocol ("per-protocol (biased)"): the mailed only, each from their own send.
    """

    treated: Rate
    holdout: Rate
    lift: Difference
    holdout_anchor: datetime
    kind: str = "intent-to-treat"


@dataclass(frozen=True)
class Assignment:
    """Who each group of the lift holds, and why assigned customers were not mailed."""

    selection: str  # "all eligible", or how the --limit drew
    treated: int
    holdout: int
    mailed: int
    #: assigned to treatment but not mailed, per reason
    not_mailed: dict[str, int] = field(default_factory=dict)
    #: mailed customers outside the selection (a different limit?): in no group
    outside: int = 0


@dataclass
class CampaignReport:
    """Everything `reelcast report` shows. Counts and rates only."""

    campaign: str
    attribution_days: float
    variants: list[VariantStats]
    holdout: HoldoutComparison | None = None
    per_protocol: HoldoutComparison | None = None
    assignment: Assignment | None = None
    sample_ratio: SampleRatioCheck | None = None
    notes: list[str] = field(default_factory=list)
    #: hits left out as machine traffic, per reason ('head', 'agent', 'soon')
    machine_hits: dict[str, int] = field(default_factory=dict)

    @property
    def sends(self) -> int:
        return sum(v.sends for v in self.variants)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (datetimes as ISO strings)."""
        data = asdict(self)
        for name in ("holdout", "per_protocol"):
            comparison = getattr(self, name)
            if comparison is not None:
                data[name]["holdout_anchor"] = comparison.holdout_anchor.isoformat()
                data[name]["lift"]["excludes_zero"] = comparison.lift.excludes_zero
        if self.sample_ratio is not None:
            data["sample_ratio"]["observed_share"] = self.sample_ratio.observed_share
        return data

    def to_markdown(self) -> str:
        """A summary to print or to publish as a Prefect markdown artifact."""
        return _markdown(self)


def _in_window(moments: Sequence[datetime], start: datetime, end: datetime) -> bool:
    return any(start <= t < end for t in moments)


def build_report(
    campaign: str,
    *,
    sends: Sequence[Send],
    tracking: Iterable[Event],
    purchases: Iterable[Event],
    population: Iterable[str] | None = None,
    holdout: Holdout | None = None,
    selection: Selection | None = None,
    assigned_at: datetime | None = None,
    outbox_states: Mapping[str, str] | None = None,
    attribution: timedelta = timedelta(days=7),
    z: float = Z95,
) -> CampaignReport:
    """The campaign report from plain values.

    `sends`: this campaign's sent emails. `tracking`: this campaign's open, click and
    unsubscribe events. `purchases`: purchase events from any source (others are
    ignored). `population`: the customer ids that entered the holdout split (eligible
    before the holdout was taken), in file order; with `holdout` (the campaign's share,
    experiment and salt) and `selection` (the run's limit and order; default: all) the
    groups are recomputed from it. Without both, there is no lift. `assigned_at`: when
    the customers were assigned (the window of the intent-to-treat lift opens then;
    unknown: at the first send, and a note says so). `outbox_states`: the outbox state
    of each customer's email, to say why assigned customers were not mailed.
    """
    if attribution <= timedelta(0):
        raise ValueError("the attribution window must be positive")
    report = CampaignReport(campaign, attribution.total_seconds() / 86400, [])
    by_customer: dict[str, Send] = {}
    for send in sends:
        earlier = by_customer.get(send.customer_id)
        if earlier is None or send.sent_at < earlier.sent_at:
            by_customer[send.customer_id] = send

    opened: set[str] = set()
    clicked: set[str] = set()
    unsubscribed: set[str] = set()
    for event in tracking:
        if event.type is EventType.open:
            opened.add(event.customer_id)
        elif event.type is EventType.click:
            clicked.add(event.customer_id)
            opened.add(event.customer_id)
        elif event.type is EventType.unsubscribe:
            unsubscribed.add(event.customer_id)
    bought: dict[str, list[datetime]] = defaultdict(list)
    for event in purchases:
        if event.type is EventType.purchase:
            bought[event.customer_id].append(event.timestamp)

    def converted(customer_id: str, anchor: datetime) -> bool:
        return _in_window(bought.get(customer_id, ()), anchor, anchor + attribution)

    groups: dict[str, list[Send]] = defaultdict(list)
    for send in by_customer.values():
        groups[send.variant or ONE_VARIANT].append(send)
    if by_customer and all(s.variant is None for s in by_customer.values()):
        report.notes.append(
            "no variant was recorded for these emails: the campaign is reported as one variant"
        )
    for name in sorted(groups):
        members = groups[name]
        ids = [s.customer_id for s in members]
        report.variants.append(
            VariantStats(
                variant=name,
                sends=len(members),
                opens=Rate.of(sum(c in opened for c in ids), len(ids), z),
                clicks=Rate.of(sum(c in clicked for c in ids), len(ids), z),
                conversions=Rate.of(
                    sum(converted(s.customer_id, s.sent_at) for s in members), len(ids), z
                ),
                unsubscribes=sum(c in unsubscribed for c in ids),
            )
        )

    if population is None or holdout is None or holdout.share == 0:
        report.notes.append(
            "no holdout comparison: it needs the campaign's customers and its holdout share"
        )
        return report
    split = list(dict.fromkeys(population))
    held = {c for c in split if holdout.contains(c)}
    selection = selection or Selection()
    treated_ids, control_ids = selection.draw(split, held)
    assigned = set(treated_ids) | set(control_ids)
    mailed_holdout = held & set(by_customer)
    if mailed_holdout:
        report.notes.append(
            f"{len(mailed_holdout)} customers in the recomputed holdout were mailed: the share, "
            "experiment or salt given differ from the campaign's; the comparison is unreliable"
        )
    report.sample_ratio = sample_ratio_check(len(control_ids), len(assigned), holdout.share)
    if report.sample_ratio.mismatch:
        report.notes.append(
            f"sample-ratio mismatch: holdout is {report.sample_ratio.observed_share:.2%} of "
            f"{len(assigned)} customers, expected {holdout.share:.2%} "
            f"(p = {report.sample_ratio.p_value:.2g}); do not trust the lift"
        )
    report.assignment = _assignment(
        selection, treated_ids, control_ids, by_customer, outbox_states or {}
    )
    if report.assignment.outside:
        report.notes.append(
            f"{report.assignment.outside} mailed customers are outside the recorded selection "
            "(was the campaign re-run with another limit?): they are in neither group"
        )
    if not by_customer and assigned_at is None:
        report.notes.append("no emails were sent: nothing to compare with the holdout")
        return report
    if assigned_at is None:
        assigned_at = min(s.sent_at for s in by_customer.values())
        report.notes.append(
            "assignment time unknown (no holdout record in the audit log): the lift's window "
            "opens at the first send"
        )
    if not treated_ids or not control_ids:
        report.notes.append("the holdout or the treated group is empty: no lift can be measured")
        return report
    treated = Rate.of(sum(converted(c, assigned_at) for c in treated_ids), len(treated_ids), z)
    control = Rate.of(sum(converted(c, assigned_at) for c in control_ids), len(control_ids), z)
    report.holdout = HoldoutComparison(
        treated, control, Difference.of(treated, control, z), assigned_at
    )
    mailed = [c for c in treated_ids if c in by_customer]
    if mailed and len(mailed) < len(treated_ids):
        per_protocol = Rate.of(
            sum(converted(c, by_customer[c].sent_at) for c in mailed), len(mailed), z
        )
        report.per_protocol = HoldoutComparison(
            per_protocol,
            control,
            Difference.of(per_protocol, control, z),
            assigned_at,
            kind="per-protocol (biased)",
        )
    return report


_NOT_MAILED = {
    "queued": "queued, not sent yet",
    "sending": "being sent",
    "failed": "the send failed",
    "suppressed": "suppressed at send time",
    "unknown": "send outcome unknown",
}
NEVER_QUEUED = "never queued (no pick, a video that failed its checks, or not approved)"


def _assignment(
    selection: Selection,
    treated: Sequence[str],
    control: Sequence[str],
    by_customer: Mapping[str, Send],
    states: Mapping[str, str],
) -> Assignment:
    not_mailed: dict[str, int] = defaultdict(int)
    for customer_id in treated:
        if customer_id not in by_customer:
            state = states.get(customer_id)
            not_mailed[_NOT_MAILED.get(str(state), NEVER_QUEUED)] += 1
    if selection.limit is None:
        shown = "all eligible customers"
    elif selection.order == "random":
        shown = f"a random draw of {selection.limit} treated customers (seeded by the campaign)"
    else:
        shown = f"the first {selection.limit} treated customers of the customers file"
    in_groups = set(treated) | set(control)
    return Assignment(
        shown,
        treated=len(treated),
        holdout=len(control),
        mailed=sum(c in by_customer for c in treated),
        not_mailed=dict(not_mailed),
        outside=sum(c not in in_groups for c in by_customer),
    )


def _pct(rate: float) -> str:
    return f"{100 * rate:.2f} %"


def _ci(rate: Rate | Difference) -> str:
    return f"[{100 * rate.low:.2f}, {100 * rate.high:.2f}]"


def _markdown(report: CampaignReport) -> str:
    lines = [
        f"# Campaign report `{report.campaign}`",
        "",
        f"Attribution window: {report.attribution_days:g} days. Intervals: 95 % "
        "(Wilson for rates, Newcombe hybrid score for the lift).",
        "",
        "| variant | sends | opens | open rate [95 % CI] | clicks | CTR [95 % CI] "
        "| conversions | conversion [95 % CI] | unsubscribes |",
        "|---|---:|---:|---|---:|---|---:|---|---:|",
    ]
    for v in report.variants:
        lines.append(
            f"| {v.variant} | {v.sends} | {v.opens.successes} | {_pct(v.opens.rate)} {_ci(v.opens)}"
            f" | {v.clicks.successes} | {_pct(v.clicks.rate)} {_ci(v.clicks)}"
            f" | {v.conversions.successes} | {_pct(v.conversions.rate)} {_ci(v.conversions)}"
            f" | {v.unsubscribes} |"
        )
    if not report.variants:
        lines.append("| (no emails sent) | 0 | | | | | | | |")
    comparison = report.holdout
    if comparison is not None:
        lift = comparison.lift
        verdict = (
            "the campaign changed conversion"
            if lift.excludes_zero
            else "no difference shown (the interval includes zero)"
        )
        lines += [
            "",
            "## Treated versus holdout (intent to treat)",
            "",
            "Everyone assigned to each group, mailed or not, over the same window from "
            f"assignment ({comparison.holdout_anchor:%Y-%m-%d %H:%M} UTC).",
            "",
            "| group | customers | converted | conversion [95 % CI] |",
            "|---|---:|---:|---|",
            f"| treated (assigned) | {comparison.treated.trials} | {comparison.treated.successes}"
            f" | {_pct(comparison.treated.rate)} {_ci(comparison.treated)} |",
            f"| holdout (nothing sent) | {comparison.holdout.trials}"
            f" | {comparison.holdout.successes}"
            f" | {_pct(comparison.holdout.rate)} {_ci(comparison.holdout)} |",
            "",
            f"**Lift: {100 * lift.estimate:+.2f} percentage points, 95 % CI "
            f"[{100 * lift.low:+.2f}, {100 * lift.high:+.2f}]** — {verdict}.",
        ]
    assignment = report.assignment
    if assignment is not None:
        lines += [
            "",
            f"Groups: {assignment.selection}; treated {assignment.treated} "
            f"(mailed {assignment.mailed}), holdout {assignment.holdout}.",
        ]
        if assignment.not_mailed:
            lines += ["", "| assigned to treatment, not mailed because | customers |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in sorted(assignment.not_mailed.items())]
    per_protocol = report.per_protocol
    if per_protocol is not None:
        pp = per_protocol.lift
        lines += [
            "",
            f"Per protocol (mailed only, biased: whatever kept customers from being mailed "
            f"may bear on buying): {_pct(per_protocol.treated.rate)} of "
            f"{per_protocol.treated.trials} mailed, lift {100 * pp.estimate:+.2f} points "
            f"[{100 * pp.low:+.2f}, {100 * pp.high:+.2f}].",
        ]
    srm = report.sample_ratio
    if srm is not None:
        state = "**MISMATCH**" if srm.mismatch else "ok"
        lines += [
            "",
            f"Sample-ratio check: {state} — holdout {srm.holdout} of {srm.population} "
            f"({srm.observed_share:.2%}, expected {srm.expected_share:.2%}), "
            f"χ² = {srm.chi2:.2f}, p = {srm.p_value:.3g}.",
        ]
    if report.notes:
        lines += ["", "Notes:", *[f"- {note}" for note in report.notes]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- the loader


@dataclass(frozen=True)
class Population:
    """The customers that entered a campaign's holdout split, and how it was found."""

    customer_ids: list[str]
    audited_holdout: int | None  # holdout exclusions the audit log recorded, if it has any
    note: str = ""


def population_from_audit(
    customer_ids: Iterable[str], *, audit_db: Target, secret: bytes, campaign: str
) -> Population:
    """The campaign's split population: `customer_ids` minus those the audit log says were
    excluded before the holdout (suppressed, no consent, frequency cap).

    The audit names customers by pseudonym, so `secret` must be the key the campaign ran
    with. Without an audit of exclusions, every given customer counts (and a note says so).
    """
    ids = list(dict.fromkeys(customer_ids))
    if not exists(audit_db):
        return Population(ids, None, "no audit log: every customer given counts as split")
    with AuditLog(audit_db) as audit:
        records = [r for r in audit.records(campaign=campaign) if r.kind == "exclusion"]
    if not records:
        return Population(ids, None, "the audit log has no exclusions for this campaign")
    before_holdout = {r.subject for r in records if r.data.get("reason") != "holdout"}
    audited_holdout = sum(r.data.get("reason") == "holdout" for r in records)
    kept = [c for c in ids if pseudonymize(secret, c) not in before_holdout]
    return Population(kept, audited_holdout)


def load_report(
    campaign: str,
    *,
    state_db: Target,
    purchases: Iterable[Event] = (),
    population: Population | None = None,
    holdout: Holdout | None = None,
    selection: Selection | None = None,
    assigned_at: datetime | None = None,
    attribution: timedelta = timedelta(days=7),
) -> CampaignReport:
    """Read the campaign's sends (the outbox in `state_db`) and tracking events (the
    tracking database beside it; people only) and build the report; `purchases` come
    from the retailer's events export."""
    with Outbox(state_db) as outbox:
        sends = [Send(s.customer_id, s.sent_at, s.variant) for s in outbox.sent(campaign)]
        unknown = outbox.counts(campaign).get(OutboxState.unknown, 0)
        states = {c: str(state) for c, state in outbox.states(campaign).items()}
    with TrackingEvents.beside(state_db) as store:
        tracking = [t.event for t in store.tracked(campaign_id=campaign)]
        machine = store.machine_hits(campaign)
    report = build_report(
        campaign,
        sends=sends,
        tracking=tracking,
        purchases=purchases,
        population=population.customer_ids if population is not None else None,
        holdout=holdout,
        selection=selection,
        assigned_at=assigned_at,
        outbox_states=states,
        attribution=attribution,
    )
    if unknown:
        report.notes.append(f"{unknown} emails have an unknown outcome and are not counted")
    report.machine_hits = machine
    if machine:
        reasons = ", ".join(f"{n} {_MACHINE_REASONS.get(r, r)}" for r, n in sorted(machine.items()))
        report.notes.append(
            f"{sum(machine.values())} machine hits are not counted as opens or clicks ({reasons})"
        )
    if population is not None:
        if population.note:
            report.notes.append(population.note)
        srm = report.sample_ratio
        audited = population.audited_holdout
        if srm is not None and audited is not None and audited != srm.holdout:
            report.notes.append(
                f"the audit log recorded {audited} holdout customers, "
                f"the recomputation found {srm.holdout}"
            )
    return report
