"""The one send path: the outbox, the transport the settings choose, the suppression list,
one dispatch pass, and its counts in the metrics. The campaign flow, the dispatch flow and
`reelcast outbox dispatch` all send through here."""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from compliance.suppression import SuppressionList
from delivery.dispatch import DispatchReport, dispatch
from delivery.outbox import Outbox
from delivery.resend import lookup_of, reconcile_with_provider
from runtime.metrics import Metrics, TimedTransport
from runtime.settings import Settings
from runtime.transports import open_transport
from runtime.workspace import Workspace
from storage import Target, is_url


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
        dispatch_lock(ws.state_db, ws.root / DISPATCH_LOCK) as lock,
    ):
        alone = lock.only_dispatcher()
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
        lock.share()  # others may send beside this pass, none reconciles it
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

#: the same lock on PostgreSQL: an advisory lock id ("send" in ASCII)
DISPATCH_LOCK_ID = 0x73656E64


class DispatchLock(Protocol):
    """Held shared by every live send pass; exclusively by one that finds itself alone.

    A killed process loses its hold at once (the kernel drops a file lock, PostgreSQL a
    closed session's advisory locks), so a SIGKILLed run never blocks the next one."""

    def only_dispatcher(self) -> bool:
        """True (now holding the lock exclusively) when no other send pass is alive."""
        ...

    def share(self) -> None:
        """Hold the lock shared (from exclusive, or waiting for an exclusive holder)."""
        ...

    def __enter__(self) -> DispatchLock: ...

    def __exit__(self, *exc: object) -> None: ...


def dispatch_lock(state: Target, lock_file: Path) -> DispatchLock:
    """The lock that tells a send pass whether other dispatchers are alive: a file lock in
    the workspace when the outbox is a SQLite file there (every dispatcher of it runs on
    this machine), an advisory lock in the database when it is on a server (dispatchers
    on every machine take the same one)."""
    return _DatabaseLock(str(state)) if is_url(state) else _FileLock(lock_file)


class _FileLock:
    def __init__(self, path: Path) -> None:
        self._file = path.open("a+b")

    def only_dispatcher(self) -> bool:
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def share(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_SH)

    def __enter__(self) -> _FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


class _DatabaseLock:
    def __init__(self, url: str) -> None:
        from storage.database import open_database

        self._db = open_database(url, branch="outbox", pool_size=1)
        # Session-level advisory locks live as long as this connection: held outside any
        # transaction, so the pass's own statements commit as usual.
        self._conn = self._db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._exclusive = False

    def _call(self, function: str) -> object:
        query = sa.text(f"SELECT {function}(:key)")
        return self._conn.execute(query, {"key": DISPATCH_LOCK_ID}).scalar()

    def only_dispatcher(self) -> bool:
        self._exclusive = bool(self._call("pg_try_advisory_lock"))
        return self._exclusive

    def share(self) -> None:
        self._call("pg_advisory_lock_shared")
        if self._exclusive:
            self._call("pg_advisory_unlock")
            self._exclusive = False

    def __enter__(self) -> _DatabaseLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()  # ends the session: its advisory locks go with it
        self._db.dispose()


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
