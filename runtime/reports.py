"""A campaign's report from a workspace: shared by `reelcast report` and the report flow."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from delivery.report import CampaignReport
from runtime.settings import Settings
from runtime.workspace import Workspace
from storage.targets import exists

if TYPE_CHECKING:
    from retail.loaders import Encoding


def demo_file(ws: Workspace, name: str) -> Path | None:
    """The demo retailer's file `name` in this workspace, if it was generated."""
    path = ws.demo_data / name
    return path if path.is_file() else None


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
    if holdout_share is None and exists(ws.audit_db):
        with AuditLog(ws.audit_db) as audit:
            recorded = [r for r in audit.records(campaign=campaign) if r.kind == "holdout"]
        share = recorded[-1].data.get("share") if recorded else None
        if isinstance(share, int | float):
            holdout_share = float(share)
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
        attribution=timedelta(days=attribution_days),
    )
    if events is None:
        result.notes.append("no events file given: conversions count no purchases (--events)")
    if holdout_share is None:
        result.notes.append("holdout share unknown: pass --holdout-share for the lift")
    return result
