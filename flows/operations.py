"""Scheduled flows besides the campaign: the send dispatcher and the daily report."""

from __future__ import annotations

import dataclasses

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from delivery.outbox import Outbox
from runtime.sending import send_due
from runtime.settings import Settings
from runtime.workspace import Workspace


def _workspace(workspace: str | None) -> tuple[Settings, Workspace]:
    settings = Settings.for_workspace(workspace)
    return settings, settings.open_workspace().create()


@task(cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=30)
def send_what_is_due(settings: Settings, ws: Workspace, limit: int | None) -> dict[str, int]:
    """One dispatcher pass; retried when the transport is unreachable."""
    report, via = send_due(settings, ws, limit=limit)
    counts = {
        "sent": report.sent,
        "failed": report.failed,
        "suppressed": report.suppressed,
        "retry_later": report.retried,
        "unknown": report.unknown,
        "deferred": report.deferred,
    }
    get_run_logger().info("dispatch via %s: %s", via, counts)
    if report.transport_error:
        raise RuntimeError(f"transport unavailable: {report.transport_error}")
    return counts


@task(cache_policy=NO_CACHE, persist_result=False)
def honour_unsubscribe_mail(settings: Settings, ws: Workspace) -> dict[str, int]:
    """Suppress whoever asked by mail (the List-Unsubscribe mailto:) since the last pass."""
    from delivery.unsubscribe_mail import honour_unsubscribe_mail as honour

    assert settings.unsubscribe_maildir is not None
    done = honour(
        settings.unsubscribe_maildir, state_db=ws.state_db, secret=settings.signing_keys()
    )
    logger = get_run_logger()
    logger.info("unsubscribe mail: %s", done)
    if done.for_a_person:
        logger.warning(
            "%d unsubscribe message(s) without a valid token are flagged in %s/cur: read "
            "them and suppress the senders with `reelcast suppress add`",
            done.for_a_person,
            settings.unsubscribe_maildir,
        )
    return dataclasses.asdict(done)


@flow(name="dispatch", log_prints=False)
def dispatch_flow(workspace: str | None = None, limit: int | None = None) -> dict[str, int]:
    """Send every queued email that is due now, each exactly once.

    With REELCAST_UNSUBSCRIBE_MAILDIR set, unsubscribe requests that came by mail are
    honoured first, so nobody who asked is mailed in this pass.
    """
    settings, ws = _workspace(workspace)
    if settings.unsubscribe_maildir is not None:
        honour_unsubscribe_mail(settings, ws)
    return send_what_is_due(settings, ws, limit)


@flow(name="report", log_prints=False)
def report_flow(
    campaign: str = "",
    workspace: str | None = None,
    customers: str | None = None,
    events: str | None = None,
    attribution_days: float = 7.0,
) -> dict:
    """Publish a campaign's report (CTR per variant, lift over the holdout) as an artifact.

    An empty `campaign` means the most recent one in the outbox.
    """
    from pathlib import Path

    from runtime.reports import campaign_report

    settings, ws = _workspace(workspace)
    if not campaign:
        with Outbox(ws.state_db) as outbox:
            known = outbox.campaigns()
        if not known:
            get_run_logger().warning("no campaign has queued anything yet: nothing to report")
            return {}
        campaign = known[-1]
    result = campaign_report(
        settings,
        ws,
        campaign,
        customers=Path(customers) if customers else None,
        events=Path(events) if events else None,
        attribution_days=attribution_days,
    )
    safe = "".join(c if c.isalnum() else "-" for c in campaign.lower())
    create_markdown_artifact(
        result.to_markdown(), key=f"campaign-{safe}-report", description="Campaign report"
    )
    return result.to_dict()


@flow(name="retrain", log_prints=False)
def retrain_flow(
    catalog: str, customers: str, events: str, workspace: str | None = None
) -> dict[str, object]:
    """Train a model on the latest files (plus tracked feedback), evaluate and register it.

    The gate in the settings decides whether campaigns switch to it. Beside the offline
    metrics the artifact shows what the model would have earned in the exploration slot
    of the latest campaign with logged propensities (off-policy, `recs.offpolicy`; the
    model re-fitted on the events before that campaign, so its own clicks do not flatter
    it), or says there is none.
    """
    from pathlib import Path

    from delivery.events_store import feedback_events
    from recs.errors import RecsError
    from recs.registry import Gate
    from recs.training import as_of, register, train
    from retail.loaders import load_retail
    from retail.types import EventType
    from runtime.models import open_registry
    from runtime.reports import campaign_counterfactual, latest_logged_campaign

    settings, ws = _workspace(workspace)
    data = load_retail(Path(catalog), Path(customers), Path(events), "skip")
    data.events.extend(feedback_events(ws.state_db, (c.id for c in data.customers)))
    trained = train(
        data.products, data.events, [c.id for c in data.customers], now=as_of(data.events)
    )
    gate = Gate(settings.recs_gate_metric, settings.recs_gate_max_drop)
    record = register(open_registry(settings, ws), trained, gate)
    logged = latest_logged_campaign(settings, ws)
    counterfactual = None
    estimate = (
        "No counterfactual estimate: no campaign has logged exploration propensities yet "
        "(a campaign with an explore rate above 0 logs them)."
    )
    if logged is not None:
        try:
            counterfactual = campaign_counterfactual(
                settings,
                ws,
                logged,
                trained.pipeline,
                # Held as columns: only the purchases become Event models.
                purchases=list(data.events.where(data.events.type_mask(EventType.purchase))),
            )
            estimate = counterfactual.to_markdown()
        except RecsError as exc:  # e.g. nothing to re-fit on before that campaign
            estimate = f"No counterfactual estimate on campaign `{logged}`: {exc}"
    lines = [
        f"# Model `{record.version}`",
        "",
        f"Approved: **{'yes' if record.approved else 'no'}** — {record.approval_note}",
        "",
        "| metric (leave-last-out) | value |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in sorted(record.metrics.items())],
        "",
        f"Data snapshot: `{record.data_hash}`",
        "",
        estimate,
    ]
    create_markdown_artifact(
        "\n".join(lines), key="recs-latest-model", description="Latest trained recommendation model"
    )
    get_run_logger().info("model %s approved=%s", record.version, record.approved)
    return {
        "version": record.version,
        "approved": record.approved,
        "metrics": record.metrics,
        "counterfactual": None if counterfactual is None else counterfactual.to_dict(),
    }
