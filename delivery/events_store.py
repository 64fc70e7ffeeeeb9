"""The tracking events of the feedback loop, kept in the workspace's SQLite state.

Every hit on the tracking app (open pixel, landing page, click, unsubscribe) and every
sent email (exposure) becomes one row here, tagged with its campaign. The next training
run reads them back as plain `retail.types.Event`s beside the retailer's own events.

Rows hold customer ids (like the outbox does), never addresses, IPs or user agents.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retail.types import Event, EventType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracking_events (
    id          INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('exposure', 'open', 'click', 'unsubscribe')),
    product_id  TEXT,
    variant     TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tracking_events_campaign ON tracking_events (campaign_id, type);
CREATE INDEX IF NOT EXISTS tracking_events_at ON tracking_events (at);
-- One exposure and one unsubscribe per campaign and customer, however often they are
-- recorded; opens and clicks keep every hit (their timing is signal for training).
CREATE UNIQUE INDEX IF NOT EXISTS tracking_events_once ON tracking_events
    (campaign_id, customer_id, type) WHERE type IN ('exposure', 'unsubscribe');
"""

TRACKED_TYPES = frozenset(
    {EventType.exposure, EventType.open, EventType.click, EventType.unsubscribe}
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width UTC: text order is time order


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("tracking times must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _parse(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class TrackedEvent:
    """One stored hit: the campaign it belongs to, the variant sent, and the Event."""

    campaign_id: str
    event: Event
    variant: str | None = None


class TrackingEvents:
    """Append-mostly store of feedback events in a SQLite file (shared with other state).

    Safe to share between threads (one connection behind a lock) and processes (WAL).
    """

    def __init__(self, db_path: Path) -> None:
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            db_path, isolation_level=None, timeout=30.0, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> TrackingEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def record(
        self,
        campaign_id: str,
        customer_id: str,
        kind: EventType,
        *,
        at: datetime | None = None,
        product_id: str | None = None,
        variant: str | None = None,
    ) -> bool:
        """Store one event; False when it was an exposure or unsubscribe already stored."""
        kind = EventType(kind)
        if kind not in TRACKED_TYPES:
            raise ValueError(f"the tracking store keeps {sorted(TRACKED_TYPES)}, not {kind}")
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO tracking_events (campaign_id, customer_id, type, product_id,"
                " variant, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    campaign_id,
                    customer_id,
                    str(kind),
                    product_id,
                    variant,
                    _ts(at or datetime.now(UTC)),
                ),
            )
            return cursor.rowcount == 1

    def record_exposures(
        self,
        campaign_id: str,
        sends: Iterable[tuple[str, datetime, str | None]],
    ) -> int:
        """Record that these emails went out: (customer_id, sent_at, variant) each.

        For the flow to call after dispatch (e.g. with the outbox's `sent` rows).
        Idempotent: a customer's exposure to a campaign is stored once. Returns how many
        were new.
        """
        rows = [
            (campaign_id, customer_id, _ts(sent_at), variant)
            for customer_id, sent_at, variant in sends
        ]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO tracking_events (campaign_id, customer_id, type, at, variant)"
                    " VALUES (?, ?, 'exposure', ?, ?) ON CONFLICT DO NOTHING",
                    [(c, cid, at, v) for c, cid, at, v in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def tracked(
        self,
        *,
        campaign_id: str | None = None,
        since: datetime | None = None,
        types: Iterable[EventType] | None = None,
    ) -> Iterator[TrackedEvent]:
        """Stored events in time order, optionally of one campaign, since a time, of types."""
        wanted = sorted(str(EventType(t)) for t in types) if types is not None else None
        sql = (
            "SELECT campaign_id, customer_id, type, product_id, variant, at"
            " FROM tracking_events WHERE (?1 IS NULL OR campaign_id = ?1)"
            " AND (?2 IS NULL OR at >= ?2) ORDER BY at, id"
        )
        rows = self._fetch(sql, (campaign_id, None if since is None else _ts(since)))
        for campaign, customer, kind, product, variant, at in rows:
            if wanted is not None and kind not in wanted:
                continue
            event = Event(
                customer_id=customer, product_id=product, type=EventType(kind), timestamp=_parse(at)
            )
            yield TrackedEvent(campaign, event, variant)

    def events(
        self, *, campaign_id: str | None = None, since: datetime | None = None
    ) -> Iterator[Event]:
        """The stored hits as `retail.types.Event`s, in time order: what training reads."""
        for tracked in self.tracked(campaign_id=campaign_id, since=since):
            yield tracked.event

    def counts(self, campaign_id: str | None = None) -> dict[str, int]:
        """Stored events per type (all four types present, zeros included)."""
        result = {str(t): 0 for t in sorted(TRACKED_TYPES)}
        rows = self._fetch(
            "SELECT type, COUNT(*) FROM tracking_events WHERE (?1 IS NULL OR campaign_id = ?1)"
            " GROUP BY type",
            (campaign_id,),
        )
        result.update({kind: n for kind, n in rows})
        return result

    def erase(self, customer_id: str) -> int:
        """Right to erasure: delete every tracking event of this customer. Returns rows."""
        with self._lock:
            return self._db.execute(
                "DELETE FROM tracking_events WHERE customer_id = ?", (customer_id,)
            ).rowcount


def feedback_events(state_db: Path, customers: Iterable[str]) -> list[Event]:
    """The tracked opens, clicks, unsubscribes and exposures of these customers, in time
    order: what earlier campaigns taught, to add to the retailer's own events."""
    known = set(customers)
    with TrackingEvents(state_db) as tracking:
        return [e for e in tracking.events() if e.customer_id in known]
