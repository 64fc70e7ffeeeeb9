"""What one campaign run did, in counts and pseudonyms only: safe to print, log and publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from campaigns.checks import Checked
from campaigns.plan import Job
from compliance.audience import Audience
from creative.render import CampaignCosts
from delivery.dispatch import DispatchReport
from delivery.gallery import SAMPLE, Gallery, GalleryItem
from recs.pick import reason_counts
from retail.loaders import RetailData
from retail.types import Customer, Pick


@dataclass
class CampaignSummary:
    """Counts of one run. No personal data: safe to print, log and publish."""

    campaign: str
    considered: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    eligible: int = 0
    selected: int = 0
    rendered: int = 0
    reused_renders: int = 0
    failed_checks: dict[str, int] = field(default_factory=dict)
    render_failures: dict[str, int] = field(default_factory=dict)
    """Why videos could not be made (a full disk, ffmpeg): customers per reason."""
    queued: int = 0
    already_queued: int = 0
    sent: int = 0
    not_sent: dict[str, int] = field(default_factory=dict)
    skipped_rows: dict[str, int] = field(default_factory=dict)
    unknown_reference_events: int = 0
    dry_run: bool = False
    model_version: str = ""
    workspace: str = ""
    maildir: str = ""
    renders: str = ""
    mail_via: str = ""
    gallery: str = ""
    """The preview gallery as a file on this machine."""
    gallery_url: str = ""
    """The same gallery at its signed, expiring link in the tracking app."""
    approval: str = ""
    approval_note: str = ""
    blocked: str = ""
    vendor: dict[str, object] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    #: pseudonymous id → why the vendor could not render that customer's video
    rendered_locally: dict[str, str] = field(default_factory=dict)

    def count_audience(
        self, data: RetailData, audience: Audience, chosen: Sequence[Customer]
    ) -> None:
        """Take the input's and the audience's counts: rows skipped, who was excluded."""
        self.skipped_rows = data.skipped_rows
        self.unknown_reference_events = data.unknown_reference_events
        self.considered, self.excluded = audience.considered, audience.counts()
        self.eligible = len(audience.eligible)
        self.selected = len(chosen)

    def count_picks(self, picks: Mapping[str, Pick]) -> None:
        """Add a chunk's picks: their candidate sources, reasons and model version."""
        sources, reasons = reason_counts(picks)
        for total, more in ((self.sources, sources), (self.reasons, reasons)):
            for name, count in more.items():
                total[name] = total.get(name, 0) + count
        if picks and not self.model_version:
            self.model_version = next(iter(picks.values())).model_version

    def count_sends(self, report: DispatchReport) -> None:
        """Add a send pass's counts: sent, and why the rest were not (a pass per chunk of
        customers; what is still deferred is the last pass's figure)."""
        self.sent += report.sent
        for reason, count in (
            ("failed", report.failed),
            ("suppressed at send time", report.suppressed),
            ("outcome unknown", report.unknown),
        ):
            if count:
                self.not_sent[reason] = self.not_sent.get(reason, 0) + count
        self.not_sent.pop("deferred", None)
        if report.deferred:
            self.not_sent["deferred"] = report.deferred

    def count_checks(self, checked: Sequence[Checked]) -> None:
        """Take the creative checks' counts: videos made and reused, problems by kind."""
        self.rendered = sum(not c.render.reused for c in checked)
        self.reused_renders = sum(c.render.reused for c in checked)
        failed: dict[str, int] = {}
        for c in checked:
            for problem in c.problems:
                failed[problem] = failed.get(problem, 0) + 1
        self.failed_checks = failed

    def count_render_failures(self, failed: Mapping[str, str]) -> None:
        """Add a chunk's reasons videos could not be made (pseudonym → reason): counts only."""
        for reason in failed.values():
            self.render_failures[reason] = self.render_failures.get(reason, 0) + 1


def progress_note(summary: CampaignSummary) -> str:
    """What the send bar says beside "done" when this run sent fewer than it queued."""
    waiting = summary.queued - summary.sent - sum(summary.not_sent.values())
    notes = [
        f"{summary.already_queued} already queued or sent" if summary.already_queued else "",
        f"{waiting} scheduled for later" if waiting > 0 else "",
        *(f"{n} {why}" for why, n in sorted(summary.not_sent.items())),
    ]
    return ", ".join(n for n in notes if n)


def preview_gallery(
    summary: CampaignSummary,
    checked: Sequence[Checked],
    stages: Mapping[str, int],
    *,
    subjects: Sequence[str],
    asks_approval: bool,
    template: str,
) -> Gallery:
    """The preview gallery of the run: the first customers' creatives (`SAMPLE`), by
    pseudonym, with the run's counts and subject lines."""
    return Gallery(
        summary.campaign,
        items=[
            GalleryItem(
                c.job.pseudonym,
                tuple(c.job.pick.product_ids),
                c.render.key,
                c.verdict,
                gif=c.render.gif is not None and c.render.gif.exists(),
            )
            for c in checked[:SAMPLE]
        ],
        stages=stages,
        excluded=summary.excluded,
        subjects=subjects,
        asks_approval=asks_approval,
        template=template,
    )


def vendor_facts(costs: CampaignCosts) -> dict[str, object]:
    """The vendor's bill for the summary."""
    return {
        "renders": costs.renders,
        "seconds": round(costs.seconds, 1),
        "cost": str(costs.amount),
        "rendered locally instead": costs.local_fallbacks,
    }


def fallback_reasons(reasons: Mapping[str, str], jobs: Sequence[Job]) -> dict[str, str]:
    """Pseudonym → why the vendor fell back to the local renderer, for this run's jobs.

    `reasons` maps storyboard keys to the vendor client's own messages, which name requests
    and statuses, never a customer; each is shortened to one table-safe line.
    """
    out = {}
    for job in jobs:
        reason = reasons.get(job.storyboard.key())
        if reason is not None:
            line = " ".join(reason.split()).replace("|", "/")
            out[job.pseudonym] = line if len(line) <= 200 else line[:199] + "…"
    return out


def picks_rows(checked: Sequence[Checked]) -> list[dict[str, str]]:
    """One table row per customer: pseudonym, picks, scores, reasons, video, check."""
    return [
        {
            "customer": c.job.pseudonym,
            "products": ", ".join(c.job.pick.product_ids),
            "scores": ", ".join(f"{s:.3f}" for s in c.job.pick.scores),
            "reasons": ", ".join(c.job.pick.reasons),
            "video": c.render.key[:12],
            "check": c.verdict,
        }
        for c in checked
    ]


def stage_counts(summary: CampaignSummary, checked: Sequence[Checked]) -> dict[str, int]:
    """How many customers reached each stage, for the gallery and the approval form."""
    return {
        "considered": summary.considered,
        "eligible": summary.eligible,
        "selected": summary.selected,
        "rendered": len(checked),
        "passed checks": sum(c.ok for c in checked),
    }


def summary_markdown(summary: CampaignSummary) -> str:
    """The run's summary as markdown tables (counts and pseudonyms only)."""
    lines = [
        f"# Campaign `{summary.campaign}`" + (" (dry run)" if summary.dry_run else ""),
        "",
        "| stage | count |",
        "|---|---|",
        f"| customers considered | {summary.considered} |",
        f"| eligible | {summary.eligible} |",
        f"| selected (limit) | {summary.selected} |",
        f"| videos rendered | {summary.rendered} (reused {summary.reused_renders}) |",
        f"| emails queued | {summary.queued} (already queued before: {summary.already_queued}) |",
        f"| emails sent | {summary.sent} |",
        "",
        "| excluded because | customers |",
        "|---|---|",
        *[f"| {reason} | {count} |" for reason, count in sorted(summary.excluded.items())],
    ]
    if summary.render_failures:
        lines += ["", "| video could not be made | customers |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.render_failures.items())]
    if summary.failed_checks:
        lines += ["", "| creative check failed | customers |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.failed_checks.items())]
    if summary.sources:
        lines += ["", "| candidate source (slots) | count |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.sources.items())]
    if summary.reasons:
        lines += ["", "| why a product was picked | slots |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.reasons.items())]
    if new := summary.reasons.get("new"):
        lines += [
            "",
            f"{new} slot(s) show products added to the catalog after model "
            f"`{summary.model_version}` was trained (like the customer's history: category, "
            "brand, words and price band); the next retraining learns them from sales.",
        ]
    if summary.vendor:
        lines += ["", "| video vendor | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in summary.vendor.items()]
    if summary.rendered_locally:
        lines += ["", "| rendered locally instead of at the vendor (customer) | why |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.rendered_locally.items())]
    if summary.approval:
        note = f" — {summary.approval_note}" if summary.approval_note else ""
        lines += ["", f"Approval: **{summary.approval}**{note}"]
    if summary.blocked:
        lines += ["", f"Stopped: {summary.blocked}"]
    lines += ["", f"Model version: `{summary.model_version}`"]
    return "\n".join(lines)


def artifact_key(campaign: str, what: str) -> str:
    """A Prefect artifact key for this campaign (lowercase letters, digits and dashes)."""
    safe = "".join(c if c.isalnum() else "-" for c in campaign.lower())
    return f"campaign-{safe}-{what}"
