"""The one send path: the outbox, the transport the settings choose, the suppression list,
one dispatch pass, and its counts in the metrics. The campaign flow, the dispatch flow and
`reelcast outbox dispatch` all send through here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from compliance.suppression import SuppressionList
from delivery.dispatch import DispatchReport, dispatch
from delivery.outbox import Outbox
from delivery.resend import lookup_of, reconcile_with_provider
from runtime.metrics import Metrics, TimedTransport
from runtime.settings import Settings
from runtime.transports import open_transport
from runtime.workspace import Workspace


def send_due(
    settings: Settings,
    ws: Workspace,
    *,
    limit: int | None = None,
    on_progress: Callable[[DispatchReport], None] | None = None,
) -> tuple[DispatchReport, str]:
    """Send every message due now (at most `limit`), each exactly once; suppression is
    checked again for each, and each send is stamped with the real time. With an email
    API, messages whose outcome an earlier pass could not know are settled first by asking
    the provider (sent, or queued again once its silence means something). Then the bodies
    of emails finished longer ago than the retention setting are dropped, so the outbox
    does not grow by a GIF per customer. Returns the pass's report and which way mail
    left."""
    with (
        Metrics(ws.metrics_db) as metrics,
        Outbox(ws.state_db) as outbox,
        open_transport(settings, ws) as (transport, via),
    ):
        lookup = lookup_of(transport)
        if lookup is not None:  # settle earlier unknown outcomes first: none lost, none twice
            reconcile_with_provider(outbox, lookup, now=datetime.now(UTC))
        report = dispatch(
            outbox,
            TimedTransport(transport, metrics),
            is_suppressed=SuppressionList(ws.state_db).__contains__,
            limit=limit,
            on_progress=on_progress,
        )
        count_sends(metrics, report)
        outbox.prune_bodies(datetime.now(UTC) - timedelta(days=settings.outbox_body_retention_days))
    return report, via


def count_sends(metrics: Metrics, report: DispatchReport) -> None:
    """Add a pass's outcomes to the email counters (`reelcast metrics`)."""
    for name, value in (
        ("emails_sent_total", report.sent),
        ("emails_failed_total", report.failed),
        ("emails_suppressed_total", report.suppressed),
        ("emails_unknown_total", report.unknown),
    ):
        if value:
            metrics.incr(name, value)
