"""What a campaign writes to the audit log, and in which words. Subjects are pseudonyms."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from campaigns.checks import Checked
from campaigns.plan import Recipient
from compliance.audience import Audience, Selection
from compliance.audit import AuditLog
from creative.template import Template
from delivery.outbox import Outbox
from recs.registry import ModelRecord
from recs.rules import Rules
from storage.targets import Target

Entries = list[tuple[str | None, Mapping[str, object]]]


def exclusion_entries(audience: Audience, pseudonym: Callable[[str], str]) -> Entries:
    """Each customer left out, and why."""
    return [(pseudonym(cid), {"reason": str(why)}) for cid, why in audience.excluded.items()]


def pick_entries(jobs: Iterable[Recipient]) -> Entries:
    """Each customer's products, scores, reasons and the model that chose them."""
    return [
        (
            job.pseudonym,
            {
                "products": list(job.pick.product_ids),
                "scores": [round(x, 6) for x in job.pick.scores],
                "reasons": list(job.pick.reasons),
                "model_version": job.pick.model_version,
            },
        )
        for job in jobs
    ]


def render_entries(checked: Iterable[Checked], rendered_locally: Mapping[str, str]) -> Entries:
    """Each customer's video (by key), whether it was reused, and why it was made here
    when the vendor should have made it."""
    return [
        (
            c.job.pseudonym,
            {"key": c.render.key, "reused": c.render.reused}
            | (
                {"rendered_locally": rendered_locally[c.job.pseudonym]}
                if c.job.pseudonym in rendered_locally
                else {}
            ),
        )
        for c in checked
    ]


def verdict_entries(checked: Iterable[Checked]) -> Entries:
    """Each customer's creative check: passed, or what failed."""
    return [(c.job.pseudonym, {"ok": c.ok, "check": c.verdict}) for c in checked]


def send_entries(jobs: Iterable[Recipient], outbox: Outbox, campaign: str) -> Entries:
    """Each queued customer's outbox state and the provider's message id."""
    return [
        (job.pseudonym, {"state": str(item.state), "provider_id": item.provider_id})
        for job in jobs
        if (item := outbox.get(campaign, job.customer.id)) is not None
    ]


class CampaignAudit:
    """One campaign's records in the audit log, a method per stage."""

    def __init__(self, log: AuditLog, campaign: str) -> None:
        self.log = log
        self.campaign = campaign

    def exclusions(self, audience: Audience, pseudonym: Callable[[str], str]) -> None:
        """Who was left out of the audience, and why."""
        self.log.append(
            "exclusion", campaign=self.campaign, entries=exclusion_entries(audience, pseudonym)
        )

    def plan(
        self,
        record: ModelRecord,
        *,
        holdout_share: float,
        held_out: int,
        template: Template,
        label: str,
        selection: Selection | None = None,
        rules: Rules | None = None,
    ) -> None:
        """The model, the holdout, the template with the label its videos carry, and the
        campaign's rules (which the counterfactual report replays a new model under; each
        customer's picks follow, a chunk of customers at a time: `picks`)."""
        self.log.record(
            "model",
            campaign=self.campaign,
            version=record.version,
            data_hash=record.data_hash,
            approved_by=record.approved_by,
            metrics=record.metrics,
        )
        # The holdout record is the assignment: its time opens the lift's window, and
        # the report redraws the run's selection from its limit and order.
        selection = selection or Selection()
        self.log.record(
            "holdout",
            campaign=self.campaign,
            share=holdout_share,
            held_out=held_out,
            limit=selection.limit,
            order=selection.order,
        )
        self.log.record(
            "template",
            campaign=self.campaign,
            name=template.name,
            version=template.version,
            label=label,
        )
        if rules is not None:
            self.log.record("rules", campaign=self.campaign, **rules.params())

    def picks(self, jobs: Iterable[Recipient]) -> None:
        """Each customer's picks."""
        self.log.append("pick", campaign=self.campaign, entries=pick_entries(jobs))

    def creatives(self, checked: Sequence[Checked], rendered_locally: Mapping[str, str]) -> None:
        """Every video made or reused, then every creative check's verdict."""
        self.log.append(
            "render", campaign=self.campaign, entries=render_entries(checked, rendered_locally)
        )
        self.log.append("verdict", campaign=self.campaign, entries=verdict_entries(checked))

    def render_failures(self, failed: Mapping[str, str]) -> None:
        """Customers (pseudonym → reason) whose video could not be made: not sent."""
        self.log.append(
            "verdict",
            campaign=self.campaign,
            entries=[(p, {"ok": False, "check": f"render: {why}"}) for p, why in failed.items()],
        )

    def approval(self, *, approved: bool, note: str, by: str) -> None:
        """A person's (or the schedule's) decision to send."""
        self.log.record("approval", campaign=self.campaign, approved=approved, note=note, by=by)

    def sends(self, jobs: Iterable[Recipient], state_db: Target) -> None:
        """Where each queued email stands after the send."""
        with Outbox(state_db) as outbox:
            entries = send_entries(jobs, outbox, self.campaign)
        self.log.append("send", campaign=self.campaign, entries=entries)
