"""The tracking events of the feedback loop, in a database of their own.

Every hit on the tracking app (open pixel, landing page, click, unsubscribe) and every
sent email (exposure) becomes one row here, tagged with its campaign. The next training
run reads them back as plain `retail.types.Event`s beside the retailer's own events.

Where: `tracking.sqlite` beside the workspace's `state.sqlite` (`Workspace.tracking_db`,
`tracking_db_beside`), in WAL mode with a short busy timeout, so a dispatch pass holding
a write transaction on the outbox never makes a click wait; or a PostgreSQL database
(a `storage` URL), where the tables sit beside the other stores'. The schema is the
storage layer's `tracking` branch (`storage/migrations/versions/tracking_0001.py`).

Workspaces from before kept these rows in `state.sqlite`: the first `TrackingEvents`
opened on a SQLite file with `legacy_db` (every workspace caller does, through
`TrackingEvents.beside`) moves them over once (copy and a marker in one transaction
here, then the old table is dropped from `state.sqlite`; a drop that finds the state busy
is retried at the next opening, and `erase` clears the old table too while it exists).

What training reads is de-duplicated and free of machine traffic: the tracking app
stores opens and clicks with `record_hit`, which folds a repeat within the window into
the stored event's `repeats` count, and flags scanner and prefetch hits with a reason
code in `machine` (see `delivery.traffic`). `events`, `tracked` and `counts` leave the
machine rows out; `machine_hits` counts them for the report.

Several processes may write at once (the tracking app's workers, a flow recording
exposures) and the database decides every duplicate: exposures and unsubscribes have a
unique key (`ON CONFLICT DO NOTHING`), and `record_hit`'s look-then-write runs with the
hit's key locked in the database (SQLite: the write lock, `BEGIN IMMEDIATE`; PostgreSQL:
a transaction-scoped advisory lock on a hash of the key), so two workers taking the same
click at once store it once. Nothing here is held in one process's memory.

Rows hold customer ids (like the outbox does), never addresses, IPs or user agents.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql

from retail.types import Event, EventType
from storage import Target, is_url
from storage.database import open_database

log = logging.getLogger("reelcast.tracking")

TRACKING_DB_NAME = "tracking.sqlite"
BUSY_TIMEOUT = 2.0  # seconds: writers here are one app and short flow batches
_LEGACY_TIMEOUT = 0.5  # dropping the old table waits this long for state.sqlite, then later
_MOVED = "moved-from-state"
_COPIED = ("campaign_id", "customer_id", "type", "product_id", "variant", "at")
#: The first key of `record_hit`'s advisory locks on PostgreSQL ("trkh"): a namespace of
#: its own (two-int advisory locks never meet the one-bigint ones the storage layer takes).
_HIT_LOCK = 0x74726B68

_metadata = sa.MetaData()
tracking_events = sa.Table(
    "tracking_events",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("product_id", sa.Text),
    sa.Column("variant", sa.Text),
    sa.Column(
        "at", sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql"), nullable=False
    ),
    sa.Column("machine", sa.Text),  # NULL: a person; else 'head', 'agent', 'soon'
    sa.Column("repeats", sa.Integer, nullable=False, server_default=sa.text("0")),
)
tracking_meta = sa.Table(
    "tracking_meta",
    _metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_t = tracking_events.c

# The tracking app's statements, built once (each hit runs two or three of them): the
# values are bound at execution.
_LOCK_TIMEOUT = sa.select(sa.func.set_config("lock_timeout", sa.bindparam("ms"), True))
_HIT_LOCKED = sa.select(
    sa.func.set_config("lock_timeout", sa.bindparam("ms"), True),
    sa.func.pg_advisory_xact_lock(_HIT_LOCK, sa.bindparam("key", type_=sa.Integer)),
)
_DELIVERED = sa.select(_t.at).where(
    _t.campaign_id == sa.bindparam("campaign"),
    _t.customer_id == sa.bindparam("customer"),
    _t.type == str(EventType.exposure),
)
_INSERT = sa.insert(tracking_events)
_REPEAT = (
    sa.update(tracking_events).where(_t.id == sa.bindparam("event")).values(repeats=_t.repeats + 1)
)
_REPEAT_EARLIER = (
    sa.update(tracking_events)
    .where(_t.id == sa.bindparam("event"))
    .values(repeats=_t.repeats + 1, at=sa.bindparam("moment"))
)


@functools.cache
def _near(product: bool, machine: bool) -> sa.Select[tuple[int, str]]:
    """Events of a hit's key within a window either side of it, in time order (events of
    one key are a window apart: a few rows at most). `product`, `machine`: whether the
    hit names a product, whether it is machine traffic."""
    return (
        sa.select(_t.id, _t.at)
        .where(
            _t.campaign_id == sa.bindparam("campaign"),
            _t.customer_id == sa.bindparam("customer"),
            _t.type == sa.bindparam("kind"),
            _t.product_id == sa.bindparam("product") if product else _t.product_id.is_(None),
            _t.machine.is_not(None) if machine else _t.machine.is_(None),
            _t.at > sa.bindparam("since"),
            _t.at < sa.bindparam("until"),
        )
        .order_by(_t.at, _t.id)
    )


def tracking_db_beside(state_db: Target) -> Target:
    """The tracking database of the workspace whose state database is `state_db`: the
    SQLite file beside it, or the same database when the state is on a server."""
    return state_db if is_url(state_db) else Path(state_db).with_name(TRACKING_DB_NAME)


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


def _hit_key(*parts: str) -> int:
    """A signed 32-bit hash of a hit's de-duplication key (for an advisory lock; two
    keys that collide only wait for each other, they are still told apart by the query)."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class TrackedEvent:
    """One stored hit: the campaign it belongs to, the variant sent, and the Event."""

    campaign_id: str
    event: Event
    variant: str | None = None


class TrackingEvents:
    """Append-mostly store of feedback events: a SQLite file of their own, or PostgreSQL
    when `target` is a database URL (`storage.open_database`).

    Safe to share between threads (a connection pool) and processes (the database
    decides every duplicate). `legacy_db`: the workspace's state database, whose
    `tracking_events` rows (from before this store had its own file) are moved into a
    SQLite `target` once; with a URL target they are not moved (see `erase`).
    `timeout`: how long a write waits for another writer (SQLite's busy timeout,
    PostgreSQL's lock timeout) before `sqlalchemy.exc.OperationalError`.
    """

    def __init__(
        self, target: Target, *, legacy_db: Path | None = None, timeout: float = BUSY_TIMEOUT
    ) -> None:
        self.target = target
        #: The SQLite file, or None when the events are in a database named by a URL.
        self.db_path: Path | None = None if is_url(target) else Path(target)
        same_file = (
            legacy_db is not None
            and self.db_path is not None
            and Path(legacy_db).resolve() == self.db_path.resolve()
        )
        # (the same file: the old table is this table)
        self.legacy_db = None if legacy_db is None or same_file else Path(legacy_db)
        self._timeout_ms = max(1, round(timeout * 1000))
        self._db = open_database(
            target, branch="tracking", sqlite_pragmas={"busy_timeout": str(self._timeout_ms)}
        )
        if self.legacy_db is not None:
            self._move_legacy()

    @classmethod
    def beside(cls, state_db: Target, *, timeout: float = BUSY_TIMEOUT) -> TrackingEvents:
        """The workspace's store: `tracking.sqlite` beside `state_db`, moving old rows once
        (on a database server: the same database, nothing to move)."""
        if is_url(state_db):
            return cls(state_db, timeout=timeout)
        return cls(tracking_db_beside(state_db), legacy_db=Path(state_db), timeout=timeout)

    @contextmanager
    def _write(self, hit_key: int | None = None) -> Iterator[Connection]:
        """A write transaction that waits at most `timeout` for a lock, on either engine;
        on PostgreSQL holding `hit_key`'s advisory lock when given (SQLite's write lock,
        `BEGIN IMMEDIATE`, already keeps every other writer out)."""
        with self._db.write() as conn:
            if self._db.is_postgres:
                timeout = {"ms": f"{self._timeout_ms}ms"}
                if hit_key is None:
                    conn.execute(_LOCK_TIMEOUT, timeout)
                else:
                    conn.execute(_HIT_LOCKED, {**timeout, "key": hit_key})
            yield conn

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
        A state database too busy to look at is left for the next opening. Only into a
        SQLite file: a database URL may serve many workspaces, one marker cannot."""
        try:
            if not self._legacy_has_table():
                return
        except sqlite3.OperationalError as exc:
            log.warning("old tracking events not looked for, the state is busy (%s)", exc)
            return
        if self.db_path is None:
            log.warning(
                "old tracking events stay in %s: they are not moved into a database URL "
                "(erasure still reaches them); drop its tracking_events table once they are "
                "no longer needed",
                self.legacy_db,
            )
            return
        assert self.legacy_db is not None
        with self._write() as conn:
            moved = conn.execute(
                sa.select(tracking_meta.c.value).where(tracking_meta.c.key == _MOVED)
            ).first()
            if moved is None:
                legacy = sqlite3.connect(self.legacy_db, timeout=30.0)
                try:
                    rows = legacy.execute(
                        f"SELECT {', '.join(_COPIED)} FROM tracking_events ORDER BY id"
                    ).fetchall()
                finally:
                    legacy.close()
                if rows:
                    conn.execute(
                        self._db.insert(tracking_events).on_conflict_do_nothing(),
                        [dict(zip(_COPIED, row, strict=True)) for row in rows],
                    )
                conn.execute(
                    sa.insert(tracking_meta).values(
                        key=_MOVED, value=f"{len(rows)} rows at {_ts(datetime.now(UTC))}"
                    )
                )
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
        """Close the database connections."""
        self._db.dispose()

    def __enter__(self) -> TrackingEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        statement = (
            self._db.insert(tracking_events)
            .values(
                campaign_id=campaign_id,
                customer_id=customer_id,
                type=str(kind),
                product_id=product_id,
                variant=variant,
                at=_ts(at or datetime.now(UTC)),
            )
            .on_conflict_do_nothing()
            .returning(_t.id)
        )
        with self._write() as conn:
            return conn.execute(statement).first() is not None

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

        The look and the write hold the hit's key locked in the database, so the same
        hit taken by two processes at once is stored once. Hits taken at once may also
        arrive out of order (each read its clock before waiting for the lock): a hit
        less than `window` before the stored event is folded into it too, and the event
        then starts at the earlier hit, as if they had come in order.
        """
        kind = EventType(kind)
        if kind not in (EventType.open, EventType.click):
            raise ValueError(f"record_hit takes opens and clicks, not {kind}")
        if window <= timedelta(0):
            raise ValueError("the de-duplication window must be positive")
        moment = _ts(at)
        near = _near(product_id is not None, machine is not None)
        key = None
        if self._db.is_postgres:
            traffic = "person" if machine is None else "machine"
            key = _hit_key(campaign_id, customer_id, str(kind), product_id or "", traffic)
        with self._write(hit_key=key) as conn:
            rows = conn.execute(
                near,
                {
                    "campaign": campaign_id,
                    "customer": customer_id,
                    "kind": str(kind),
                    "product": product_id,
                    "since": _ts(at - window),
                    "until": _ts(at + window),
                },
            ).all()
            before = [row for row in rows if row.at <= moment]
            if before:  # the latest event this hit repeats
                conn.execute(_REPEAT, {"event": before[-1].id})
            elif rows:  # an event stored by a hit taken after this one: it starts here now
                conn.execute(_REPEAT_EARLIER, {"event": rows[0].id, "moment": moment})
            else:
                conn.execute(
                    _INSERT,
                    {
                        "campaign_id": campaign_id,
                        "customer_id": customer_id,
                        "type": str(kind),
                        "product_id": product_id,
                        "at": moment,
                        "machine": machine,
                    },
                )
        return not rows

    def delivered_at(self, campaign_id: str, customer_id: str) -> datetime | None:
        """When this customer's email of this campaign was sent (its exposure), if known."""
        params = {"campaign": campaign_id, "customer": customer_id}
        with self._db.read() as conn:
            at = conn.execute(_DELIVERED, params).scalar()
        return None if at is None else _parse(at)

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
            {
                "campaign_id": campaign_id,
                "customer_id": customer_id,
                "type": str(EventType.exposure),
                "at": _ts(sent_at),
                "variant": variant,
            }
            for customer_id, sent_at, variant in sends
        ]
        if not rows:
            return 0
        statement = self._db.insert(tracking_events).on_conflict_do_nothing().returning(_t.id)
        with self._write() as conn:
            return len(conn.execute(statement, rows).all())

    def tracked(
        self,
        *,
        campaign_id: str | None = None,
        since: datetime | None = None,
        types: Iterable[EventType] | None = None,
    ) -> Iterator[TrackedEvent]:
        """Stored events of people in time order, optionally of one campaign, since a
        time, of types. Machine traffic is left out (see `machine_hits`)."""
        query = (
            sa.select(_t.campaign_id, _t.customer_id, _t.type, _t.product_id, _t.variant, _t.at)
            .where(_t.machine.is_(None))
            .order_by(_t.at, _t.id)
        )
        if campaign_id is not None:
            query = query.where(_t.campaign_id == campaign_id)
        if since is not None:
            query = query.where(_t.at >= _ts(since))
        if types is not None:
            query = query.where(_t.type.in_(sorted(str(EventType(t)) for t in types)))
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        for campaign, customer, kind, product, variant, at in rows:
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
        query = sa.select(_t.type, sa.func.count()).where(_t.machine.is_(None)).group_by(_t.type)
        if campaign_id is not None:
            query = query.where(_t.campaign_id == campaign_id)
        with self._db.read() as conn:
            result.update({kind: int(n) for kind, n in conn.execute(query)})
        return result

    def machine_hits(self, campaign_id: str | None = None) -> dict[str, int]:
        """Machine hits per reason code ('head', 'agent', 'soon'), repeats included."""
        query = (
            sa.select(_t.machine, sa.func.sum(1 + _t.repeats))
            .where(_t.machine.is_not(None))
            .group_by(_t.machine)
        )
        if campaign_id is not None:
            query = query.where(_t.campaign_id == campaign_id)
        with self._db.read() as conn:
            return {reason: int(n) for reason, n in conn.execute(query)}

    def erase(self, customer_id: str) -> int:
        """Right to erasure: delete every tracking event of this customer (here, and in
        the state database's old table while it exists: not dropped yet because the state
        was busy, or never moved because the events are in a database URL). Returns rows."""
        if self.legacy_db is not None:
            self._move_legacy()  # first, so no old row of theirs is copied in afterwards
        with self._write() as conn:
            erased = conn.execute(
                sa.delete(tracking_events).where(_t.customer_id == customer_id)
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


def feedback_events(state_db: Target, customers: Iterable[str]) -> list[Event]:
    """The tracked opens, clicks, unsubscribes and exposures of these customers, in time
    order: what earlier campaigns taught, to add to the retailer's own events.

    `state_db` is the workspace's state database; the events are read from the tracking
    database beside it (`tracking_db_beside`). Machine traffic is never among them."""
    known = set(customers)
    with TrackingEvents.beside(state_db) as tracking:
        return [e for e in tracking.events() if e.customer_id in known]
