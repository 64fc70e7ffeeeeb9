"""A campaign's report from a workspace: shared by `reelcast report` and the report flow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from delivery.report import CampaignReport
from runtime.settings import Settings
from runtime.workspace import Workspace
from storage.targets import exists

if TYPE_CHECKING:
    from compliance.audience import Selection
    from compliance.audit import Record
    from recs.offpolicy import Counterfactual, Round
    from recs.pipeline import Pipeline
    from recs.rules import Rules
    from retail.loaders import Encoding
    from retail.types import Event


def demo_file(ws: Workspace, name: str) -> Path | None:
    """The demo retailer's file `name` in this workspace, if it was generated."""
    path = ws.demo_data / name
    return path if path.is_file() else None


def assignment_of(recorded: Sequence[Record], campaign: str) -> tuple[Selection, datetime | None]:
    """The run's selection (the latest run's limit and order: a larger random draw holds
    the smaller) and the assignment time (the first run's) from the campaign's holdout
    records; campaigns audited before selections were recorded took everyone."""
    from compliance.audience import Selection, SelectionOrder

    if not recorded:
        return Selection(experiment=campaign), None
    data = recorded[-1].data
    limit = data.get("limit")
    # Recorded before --limit drew at random (no order): it took the head of the file.
    order: SelectionOrder = "random" if data.get("order", "file") == "random" else "file"
    selection = Selection(
        limit if isinstance(limit, int) and limit > 0 else None, order, experiment=campaign
    )
    return selection, datetime.fromisoformat(recorded[0].at)


def campaign_report(
    settings: Settings,
    ws: Workspace,
    campaign: str,
    *,
    customers: Path | None = None,
    events: Path | None = None,
    holdout_share: float | None = None,
    attribution_days: float = 7.0,
    encoding: Encoding = "utf-8",
) -> CampaignReport:
    """Build a campaign's report from the workspace (shared by the CLI and the report flow).

    Raises RetailDataError for unreadable customer or event files (`encoding`: theirs,
    when they have no byte-order mark).
    """
    from compliance.audience import Holdout
    from compliance.audit import AuditLog
    from delivery.report import load_report, population_from_audit
    from retail.loaders import load_events, load_rows
    from retail.types import Customer, EventType

    if campaign == "demo":
        customers = customers or demo_file(ws, "customers.csv")
        events = events or demo_file(ws, "events.csv")
    recorded = []
    if exists(ws.audit_db):
        with AuditLog(ws.audit_db) as audit:
            recorded = audit.records(campaign=campaign, kind="holdout")
    if holdout_share is None and recorded:
        share = recorded[-1].data.get("share")
        if isinstance(share, int | float):
            holdout_share = float(share)
    selection, assigned_at = assignment_of(recorded, campaign)
    purchases = []
    if events is not None:
        # Held as columns: only the purchases become Event models.
        table = load_events(events, "skip", encoding=encoding).events
        purchases = list(table.where(table.type_mask(EventType.purchase)))
    population = None
    if customers is not None:
        ids = [c.id for c in load_rows(customers, Customer, "skip", encoding=encoding).items]
        population = population_from_audit(
            ids, audit_db=ws.audit_db, secret=settings.secret(), campaign=campaign
        )
    holdout = Holdout(holdout_share, campaign, settings.holdout_salt) if holdout_share else None
    result = load_report(
        campaign,
        state_db=ws.state_db,
        purchases=purchases,
        population=population,
        holdout=holdout,
        selection=selection,
        assigned_at=assigned_at,
        attribution=timedelta(days=attribution_days),
    )
    if events is None:
        result.notes.append("no events file given: conversions count no purchases (--events)")
    if holdout_share is None:
        result.notes.append("holdout share unknown: pass --holdout-share for the lift")
    return result


def counterfactual_report(
    settings: Settings,
    ws: Workspace,
    campaign: str,
    model_version: str,
    *,
    events: Path | None = None,
    attribution_days: float = 7.0,
    encoding: Encoding = "utf-8",
    rules: Rules | None = None,
) -> Counterfactual:
    """What model `model_version` (from the registry) would have earned in the campaign's
    exploration slot, estimated off-policy from the campaign's logged picks, sends and
    clicks (`recs.offpolicy`); conversions too when an `events` file gives purchases
    (default for campaign `demo`: the demo retailer's). `rules`: the campaign's rules,
    when known (see `campaign_counterfactual`).

    Raises RecsError when the registry has no such model, RetailDataError for an
    unreadable events file.
    """
    from recs.errors import RecsError
    from recs.training import load
    from runtime.models import open_registry

    if campaign == "demo":
        events = events or demo_file(ws, "events.csv")
    registry = open_registry(settings, ws)
    record = registry.get(model_version)
    if record is None:
        known = ", ".join(r.version for r in registry.all()) or "none"
        raise RecsError(f"no model {model_version!r} in {registry.where} (known: {known})")
    return campaign_counterfactual(
        settings,
        ws,
        campaign,
        load(registry, record),
        purchases=None if events is None else _purchases(events, encoding),
        attribution=timedelta(days=attribution_days),
        rules=rules,
    )


def _purchases(events: Path, encoding: Encoding) -> list[Event]:
    """The purchase events of a retailer's events file (held as columns until then)."""
    from retail.loaders import load_events
    from retail.types import EventType

    table = load_events(events, "skip", encoding=encoding).events
    return list(table.where(table.type_mask(EventType.purchase)))


@dataclass(frozen=True)
class _Logged:
    """A campaign's logged exploration: what off-policy evaluation reads."""

    sent: dict[str, datetime]  # customer id → first send
    picks: dict[str, tuple[list[str], list[str]]]  # customer id → (products, reasons)
    served_versions: list[str]
    shown: set[str]  # every product the campaign's picks showed
    rules: Rules | None = None  # the campaign's, as its audit log recorded them

    @property
    def rounds(self) -> list[Round]:
        from recs.offpolicy import logged_rounds

        return logged_rounds(self.picks, self.sent)


def _logged(settings: Settings, ws: Workspace, campaign: str) -> _Logged:
    """The campaign's sends (the outbox), its picks (the audit log, by pseudonym, matched
    to the sent customers with the workspace's secret)."""
    from compliance.audit import AuditLog
    from compliance.pseudonym import pseudonymize
    from delivery.outbox import Outbox
    from recs.rules import Rules

    sent: dict[str, datetime] = {}
    if exists(ws.state_db):
        with Outbox(ws.state_db) as outbox:
            for send in outbox.sent(campaign):
                if send.customer_id not in sent or send.sent_at < sent[send.customer_id]:
                    sent[send.customer_id] = send.sent_at
    by_pseudonym: dict[str, tuple[list[str], list[str], str]] = {}
    rules: Rules | None = None
    if sent and exists(ws.audit_db):
        with AuditLog(ws.audit_db) as audit:
            records = audit.records(campaign=campaign, kind="pick")
            rules_records = audit.records(campaign=campaign, kind="rules")
        if rules_records:
            # The last run's rules (a re-run of the campaign may have changed them).
            rules = Rules.from_params(rules_records[-1].data)
        for r in records:
            # The first record of a customer is the pick their email was made from (a
            # re-run queues nothing new for them).
            if r.subject is not None and r.subject not in by_pseudonym:
                by_pseudonym[r.subject] = (
                    [str(x) for x in _list(r.data.get("products"))],
                    [str(x) for x in _list(r.data.get("reasons"))],
                    str(r.data.get("model_version", "")),
                )
    secret = settings.secret() if by_pseudonym else b""
    picks: dict[str, tuple[list[str], list[str]]] = {}
    versions: set[str] = set()
    for customer_id in sent:
        found = by_pseudonym.get(pseudonymize(secret, customer_id)) if secret else None
        if found is not None:
            picks[customer_id] = (found[0], found[1])
            versions.add(found[2])
    shown = {p for products, _ in picks.values() for p in products}
    return _Logged(sent, picks, sorted(versions), shown, rules)


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def latest_logged_campaign(settings: Settings, ws: Workspace) -> str | None:
    """The most recent campaign (by first queued email) with at least one logged round:
    a sent customer whose pick logged the propensity of its last slot."""
    from delivery.outbox import Outbox

    if not exists(ws.state_db):
        return None
    with Outbox(ws.state_db) as outbox:
        campaigns = outbox.campaigns()
    for campaign in reversed(campaigns):
        if _logged(settings, ws, campaign).rounds:
            return campaign
    return None


def campaign_counterfactual(
    settings: Settings,
    ws: Workspace,
    campaign: str,
    pipeline: Pipeline,
    *,
    purchases: Sequence[Event] | None = None,
    attribution: timedelta = timedelta(days=7),
    rules: Rules | None = None,
    min_ess: float | None = None,
) -> Counterfactual:
    """The counterfactual of a fitted pipeline on a campaign of this workspace (see
    `counterfactual_report`; the retrain flow calls this with the model it just trained).

    The model must not have seen the campaign's outcome: when it learned from events at
    or after the campaign's first send (the retrain flow adds the campaign's clicks to
    its training data), its settings are re-fitted on its own events before that send
    and the re-fitted model is evaluated. Its choice for a customer is the last of its
    picks as of the first send: the campaign's number of products, `rules` (default: the
    campaign's as its audit log recorded them, else `Rules()` for a campaign run before
    they were recorded) with exploration off. A pick with fewer products shows nothing
    in that slot.
    """
    from delivery.events_store import TrackingEvents
    from recs.offpolicy import MIN_ESS, counterfactual
    from recs.pick import serve
    from recs.pipeline import Pipeline
    from recs.rules import Rules
    from retail.types import EventType

    logged = _logged(settings, ws, campaign)
    rounds = logged.rounds
    notes: list[str] = []
    evaluated = pipeline
    choices: dict[str, str] = {}
    if rounds:
        first_send = min(logged.sent.values())
        history = pipeline.history
        if history is None:
            raise ValueError("the pipeline is not fitted")
        if history.now > first_send.timestamp():
            evaluated = Pipeline(pipeline.config).fit(history.log, now=first_send.timestamp())
            notes.append(
                f"model {pipeline.version} learned from events up to "
                f"{_day(history.now)}, after the campaign's first send ({_day(first_send)}): "
                f"evaluated as its settings re-fitted on its own events before that send "
                f"({evaluated.version}), so the campaign's own outcome does not flatter it"
            )
        lengths = Counter(len(logged.picks[r.customer_id][0]) for r in rounds)
        n = lengths.most_common(1)[0][0]
        picks = serve(
            evaluated,
            [r.customer_id for r in rounds],
            n=n,
            now=first_send,
            rules=replace(rules or logged.rules or Rules(), epsilon=0.0),
        )
        choices = {c: p.product_ids[-1] for c, p in picks.items() if len(p.product_ids) == n}
        unseen = sum(choices.get(r.customer_id) not in logged.shown for r in rounds)
        if rules is None and logged.rules is None:
            notes.append(
                "the campaign's rules are not in its audit log (run before they were "
                "recorded): the model's choices follow the default rules"
            )
        if unseen:
            notes.append(
                f"for {unseen} of {len(rounds)} rounds the model's choice is a product the "
                "campaign showed nobody, or none (blocked, out of stock, new, or no pick: "
                "the campaign's catalog is not in the audit log): those count as earning "
                "nothing"
            )
    with TrackingEvents.beside(ws.state_db) as store:
        clicks = [t.event for t in store.tracked(campaign_id=campaign, types=[EventType.click])]
    result = counterfactual(
        campaign,
        rounds,
        choices,
        model_version=pipeline.version,
        evaluated_version=evaluated.version,
        served_versions=logged.served_versions,
        sends=len(logged.sent),
        clicks=clicks,
        purchases=purchases,
        attribution=attribution,
        min_ess=MIN_ESS if min_ess is None else min_ess,
    )
    result.notes.extend(notes)
    if purchases is None:
        result.notes.append("no events file: conversions are not estimated (--events)")
    return result


def _day(moment: float | datetime) -> str:
    if isinstance(moment, datetime):
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    return f"{datetime.fromtimestamp(moment, UTC):%Y-%m-%d %H:%M} UTC"
