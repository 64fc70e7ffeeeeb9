"""The tracking events of the feedback loop, in their own SQLite database.

Every hit on the tracking app (open pixel, landing page, click, unsubscribe) and every
sent email (exposure) becomes one row here, tagged with its campaign. The next training
run reads them back as plain `retail.types.Event`s beside the retailer's own events.

Own database: `tracking.sqlite` beside the workspace's `state.sqlite` (`Workspace.
tracking_db`, `tracking_db_beside`), in WAL mode with a short busy timeout, so a
dispatch pass holding a write transaction on the outbox never makes a click wait.
Workspaces from before kept these rows in `state.sqlite`: the first `TrackingEvents`
opened with `legacy_db` (every workspace caller does, through `TrackingEvents.beside`)
moves them over once (copy and a marker in one transaction here, then the old table is
dropped from `state.sqlite`; a drop that finds the state busy is retried at the next
opening, and `erase` clears the old table too while it exists).

What training reads is de-duplicated and free of machine traffic: the tracking app
stores opens and clicks with `record_hit`, which folds a repeat within the window into
the stored event's `repeats` count, and flags scanner and prefetch hits with a reason
code in `machine` (see `delivery.traffic`). `events`, `tracked` and `counts` leave the
machine rows out; `machine_hits` counts them for the report.

Rows hold customer ids (like the outbox does), never addresses, IPs or user agents.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retail.types import Event, EventType

log = logging.getLogger("reelcast.tracking")

TRACKING_DB_NAME = "tracking.sqlite"
BUSY_TIMEOUT = 2.0  # seconds: writers here are one app and short flow batches
_LEGACY_TIMEOUT = 0.5  # dropping the old table waits this long for state.sqlite, then later
_MOVED = "moved-from-state"

_TABLE = """
CREATE TABLE IF NOT EXISTS tracking_events (
    id          INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('exposure', 'open', 'click', 'unsubscribe')),
    product_id  TEXT,
    variant     TEXT,
    at          TEXT NOT NULL,
    machine     TEXT,                       -- NULL: a person; else 'head', 'agent', 'soon'
    repeats     INTEGER NOT NULL DEFAULT 0  -- hits folded into this one (same window)
);
CREATE TABLE IF NOT EXISTS tracking_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS tracking_events_campaign ON tracking_events (campaign_id, type);
CREATE INDEX IF NOT EXISTS tracking_events_at ON tracking_events (at);
CREATE INDEX IF NOT EXISTS tracking_events_hits
    ON tracking_events (campaign_id, customer_id, type, at);
-- One exposure and one unsubscribe per campaign and customer, however often they are
-- recorded; opens and clicks are folded per window by `record_hit`.
CREATE UNIQUE INDEX IF NOT EXISTS tracking_events_once ON tracking_events
    (campaign_id, customer_id, type) WHERE type IN ('exposure', 'unsubscribe');
"""
_COLUMNS = {"machine": "TEXT", "repeats": "INTEGER NOT NULL DEFAULT 0"}
_COPIED = "campaign_id, customer_id, type, product_id, variant, at"


def tracking_db_beside(state_db: Path) -> Path:
    """The tracking database of the workspace whose state database is `state_db`."""
    return Path(state_db).with_name(TRACKING_DB_NAME)


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
    """Append-mostly store of feedback events in a SQLite file of their own.

    Safe to share between threads (one connection behind a lock) and processes (WAL).
    `legacy_db`: the workspace's state database, whose `tracking_events` rows (from
    before this store had its own file) are moved here once. `timeout`: how long a
    write waits for another writer before `sqlite3.OperationalError`.
    """

    def __init__(
        self, db_path: Path, *, legacy_db: Path | None = None, timeout: float = BUSY_TIMEOUT
    ) -> None:
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        if legacy_db is not None and Path(legacy_db).resolve() == db_path.resolve():
            legacy_db = None  # the old table is this table
        self.legacy_db = None if legacy_db is None else Path(legacy_db)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            db_path, isolation_level=None, timeout=timeout, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_TABLE)
        self._add_columns()
        self._db.executescript(_INDEXES)
        if self.legacy_db is not None:
            self._move_legacy()

    @classmethod
    def beside(cls, state_db: Path, *, timeout: float = BUSY_TIMEOUT) -> TrackingEvents:
        """The workspace's store: `tracking.sqlite` beside `state_db`, moving old rows once."""
        return cls(tracking_db_beside(state_db), legacy_db=state_db, timeout=timeout)

    def _add_columns(self) -> None:
        # A table written by an older reelcast (or opened in an old state.sqlite) lacks the
        # machine flag and the repeat count; add them. Two openers may race: re-check.
        for name, decl in _COLUMNS.items():
            have = {row[1] for row in self._db.execute("PRAGMA table_info(tracking_events)")}
            if name not in have:
                try:
                    self._db.execute(f"ALTER TABLE tracking_events ADD COLUMN {name} {decl}")
                except sqlite3.OperationalError:
                    have = {r[1] for r in self._db.execute("PRAGMA table_info(tracking_events)")}
                    if name not in have:
                        raise

    # ------------------------------------------------------------ the one-time move

    def _legacy_has_table(self, *, wait: float = _LEGACY_TIMEOUT) -> bool:
        """Whether the state database still holds the old table (a read: in WAL mode a
        writer there does not block it; a rollback-journal state may, for `wait`)."""
        assert self.legacy_db is not None
        if not self.legacy_db.exists():
            return False
        legacy = sqlite3.connect(self.legacy_db, timeout=wait)
        try:
            found = legacy.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tracking_events'"
            ).fetchone()
        finally:
            legacy.close()
        return found is not None

    def _move_legacy(self) -> None:
        """Copy the old table's rows here once (with a marker), then drop the old table.
        A state database too busy to look at is left for the next opening."""
        try:
            if not self._legacy_has_table():
                return
        except sqlite3.OperationalError as exc:
            log.warning("old tracking events not looked for, the state is busy (%s)", exc)
            return
        assert self.legacy_db is not None
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                moved = self._db.execute(
                    "SELECT 1 FROM tracking_meta WHERE key = ?", (_MOVED,)
                ).fetchone()
                if moved is None:
                    legacy = sqlite3.connect(self.legacy_db, timeout=30.0)
                    try:
                        rows = legacy.execute(
                            f"SELECT {_COPIED} FROM tracking_events ORDER BY id"
                        ).fetchall()
                    finally:
                        legacy.close()
                    self._db.executemany(
                        f"INSERT INTO tracking_events ({_COPIED}) VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT DO NOTHING",
                        rows,
                    )
                    self._db.execute(
                        "INSERT INTO tracking_meta (key, value) VALUES (?, ?)",
                        (_MOVED, f"{len(rows)} rows at {_ts(datetime.now(UTC))}"),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._drop_legacy(wait=_LEGACY_TIMEOUT)

    def _drop_legacy(self, *, wait: float) -> bool:
        """Drop the moved table from the state database; False if it stayed (busy)."""
        assert self.legacy_db is not None
        legacy = sqlite3.connect(self.legacy_db, isolation_level=None, timeout=wait)
        try:
            legacy.execute("DROP TABLE IF EXISTS tracking_events")
        except sqlite3.OperationalError as exc:
            log.warning("tracking events moved; the old copy stays until later (%s)", exc)
            return False
        finally:
            legacy.close()
        return True

    # ---------------------------------------------------------------------- access

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
        """Store one event as it is; False when it was an exposure or unsubscribe already
        stored. Hits from the tracking app go through `record_hit` instead."""
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

    def record_hit(
        self,
        campaign_id: str,
        customer_id: str,
        kind: EventType,
        *,
        at: datetime,
        product_id: str | None = None,
        machine: str | None = None,
        window: timedelta = timedelta(hours=1),
    ) -> bool:
        """Store an open or a click, de-duplicated: True when stored as a new event.

        A hit of the same token (campaign and customer), kind and product (clicks) within
        `window` after a stored one of the same class (person or machine) only raises that
        event's `repeats`: one open per token and one click per token and product per
        window, whoever hammers the link. `machine` is a `delivery.traffic` reason code.
        """
        kind = EventType(kind)
        if kind not in (EventType.open, EventType.click):
            raise ValueError(f"record_hit takes opens and clicks, not {kind}")
        if window <= timedelta(0):
            raise ValueError("the de-duplication window must be positive")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT id FROM tracking_events WHERE campaign_id = ? AND customer_id = ?"
                    " AND type = ? AND product_id IS ? AND (machine IS NULL) = (? IS NULL)"
                    " AND at > ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1",
                    (
                        campaign_id,
                        customer_id,
                        str(kind),
                        product_id,
                        machine,
                        _ts(at - window),
                        _ts(at),
                    ),
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE tracking_events SET repeats = repeats + 1 WHERE id = ?", (row[0],)
                    )
                else:
                    self._db.execute(
                        "INSERT INTO tracking_events (campaign_id, customer_id, type,"
                        " product_id, at, machine) VALUES (?, ?, ?, ?, ?, ?)",
                        (campaign_id, customer_id, str(kind), product_id, _ts(at), machine),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return row is None

    def delivered_at(self, campaign_id: str, customer_id: str) -> datetime | None:
        """When this customer's email of this campaign was sent (its exposure), if known."""
        rows = self._fetch(
            "SELECT at FROM tracking_events WHERE campaign_id = ? AND customer_id = ?"
            " AND type = 'exposure'",
            (campaign_id, customer_id),
        )
        return _parse(rows[0][0]) if rows else None

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
        """Stored events of people in time order, optionally of one campaign, since a
        time, of types. Machine traffic is left out (see `machine_hits`)."""
        wanted = sorted(str(EventType(t)) for t in types) if types is not None else None
        sql = (
            "SELECT campaign_id, customer_id, type, product_id, variant, at"
            " FROM tracking_events WHERE (?1 IS NULL OR campaign_id = ?1)"
            " AND (?2 IS NULL OR at >= ?2) AND machine IS NULL ORDER BY at, id"
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
        """The stored hits of people as `retail.types.Event`s, in time order: what
        training reads (one per de-duplication window, no machine traffic)."""
        for tracked in self.tracked(campaign_id=campaign_id, since=since):
            yield tracked.event

    def counts(self, campaign_id: str | None = None) -> dict[str, int]:
        """Stored events of people per type (all four types present, zeros included)."""
        result = {str(t): 0 for t in sorted(TRACKED_TYPES)}
        rows = self._fetch(
            "SELECT type, COUNT(*) FROM tracking_events WHERE (?1 IS NULL OR campaign_id = ?1)"
            " AND machine IS NULL GROUP BY type",
            (campaign_id,),
        )
        result.update({kind: n for kind, n in rows})
        return result

    def machine_hits(self, campaign_id: str | None = None) -> dict[str, int]:
        """Machine hits per reason code ('head', 'agent', 'soon'), repeats included."""
        rows = self._fetch(
            "SELECT machine, SUM(1 + repeats) FROM tracking_events"
            " WHERE (?1 IS NULL OR campaign_id = ?1) AND machine IS NOT NULL GROUP BY machine",
            (campaign_id,),
        )
        return {reason: int(n) for reason, n in rows}

    def erase(self, customer_id: str) -> int:
        """Right to erasure: delete every tracking event of this customer (here, and in
        the state database's old table if it could not be dropped yet). Returns rows."""
        if self.legacy_db is not None:
            self._move_legacy()  # first, so no old row of theirs is copied in afterwards
        with self._lock:
            erased = self._db.execute(
                "DELETE FROM tracking_events WHERE customer_id = ?", (customer_id,)
            ).rowcount
        if self.legacy_db is not None and self._legacy_has_table(wait=30.0):
            # Still there (the state database was busy): erase in place.
            legacy = sqlite3.connect(self.legacy_db, isolation_level=None, timeout=30.0)
            try:
                erased += legacy.execute(
                    "DELETE FROM tracking_events WHERE customer_id = ?", (customer_id,)
                ).rowcount
            finally:
                legacy.close()
        return erased


def feedback_events(state_db: Path, customers: Iterable[str]) -> list[Event]:
    """The tracked opens, clicks, unsubscribes and exposures of these customers, in time
    order: what earlier campaigns taught, to add to the retailer's own events.

    `state_db` is the workspace's state database; the events are read from the tracking
    database beside it (`tracking_db_beside`). Machine traffic is never among them."""
    known = set(customers)
    with TrackingEvents.beside(state_db) as tracking:
        return [e for e in tracking.events() if e.customer_id in known]
