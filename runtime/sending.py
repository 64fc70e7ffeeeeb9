"""The one send path: the outbox, the transport the settings choose, the suppression list,
one dispatch pass, and its counts in the metrics. The campaign flow, the dispatch flow and
`reelcast outbox dispatch` all send through here."""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import IO

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
        (ws.root / DISPATCH_LOCK).open("a+b") as lock,
    ):
        alone = _only_dispatcher(lock)
        interrupted: list[tuple[str, str]] = []
        if alone:
            # Every live dispatcher of this workspace holds the lock (shared) while it
            # sends, so none is alive: rows left in `sending` are a killed run's. Settle
            # them now (claimed only → queued; send started → unknown), not after the
            # stale window a live dispatcher's claims get.
            stale = outbox.reconcile(datetime.now(UTC), stale_after=timedelta(0))
            interrupted = [(i.campaign_id, i.customer_id) for i in stale.unknown]
        lookup = lookup_of(transport)
        if lookup is not None:  # settle earlier unknown outcomes first: none lost, none twice
            # Our own sink's "not found" is final when no other dispatcher can be sending
            # through one; a provider's activity lags, so its silence counts only later.
            at_once = alone and getattr(transport, "settles_at_once", False)
            settled = reconcile_with_provider(
                outbox,
                lookup,
                now=datetime.now(UTC),
                settle_after=timedelta(0) if at_once else SETTLE_AFTER,
            )
            interrupted = [k for k in interrupted if k in settled.undecided]
        fcntl.flock(lock, fcntl.LOCK_SH)  # others may send beside this pass, none reconciles it
        report = dispatch(
            outbox,
            TimedTransport(transport, metrics),
            is_suppressed=SuppressionList(ws.state_db).__contains__,
            limit=limit,
            on_progress=on_progress,
        )
        report.reconciled_unknown[:0] = interrupted
        count_sends(metrics, report)
        outbox.prune_bodies(datetime.now(UTC) - timedelta(days=settings.outbox_body_retention_days))
    return report, via


#: how long a provider's "no such message" must be old before it means "not delivered"
SETTLE_AFTER = timedelta(minutes=15)

#: held shared by every send pass of a workspace; exclusively only to settle dead ones' rows
DISPATCH_LOCK = "dispatch.lock"


def _only_dispatcher(lock: IO[bytes]) -> bool:
    """True (holding `lock` exclusively) when no other send pass of this workspace is alive.

    The kernel drops a killed process's lock, so a SIGKILLed run never blocks this.
    """
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


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
