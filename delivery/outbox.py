"""The outbox: every email of every campaign, sent exactly once, on SQLite or PostgreSQL.

One row per (campaign, customer), enforced by a UNIQUE key, so re-running a campaign
queues nothing twice. A row moves

    queued ──claim──► sending ──► sent | failed | suppressed | unknown
       ▲                 │
       └──── retry / release (only when nothing can have gone out)

`sending` is split in two moments: claimed (the dispatcher owns the row) and send started
(recorded durably just before the transport is called). After a crash, a row that was
claimed but never started is safely queued again; a row whose send had started may have
been delivered, so it becomes `unknown` and is never sent again without an operator.

The outbox is one store of the storage layer: a SQLite file (one machine), or a
PostgreSQL database that dispatchers on several machines share. The same SQLAlchemy Core
statements run on both, and every state move is one conditional UPDATE. On PostgreSQL a
claim skips rows another claim has locked (`FOR UPDATE SKIP LOCKED`) instead of waiting
for them, so dispatchers claim disjoint batches side by side; on SQLite claims take the
file's write lock in turn.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from delivery.errors import DeliveryError, redact_addresses
from delivery.policy import message_from_bytes, message_to_bytes
from storage import Target, is_url
from storage.database import open_database


class OutboxState(StrEnum):
    """Where one message is in its life."""

    queued = "queued"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    suppressed = "suppressed"
    unknown = "unknown"


class OutboxStateError(DeliveryError):
    """A row was not in a state that allows the requested move (someone else moved it)."""


@dataclass(frozen=True)
class OutboxItem:
    """One outbox row. `recipient` and `message` are personal data: kept out of repr."""

    id: int
    campaign_id: str
    customer_id: str
    recipient: str = field(repr=False)
    message: bytes = field(repr=False)
    message_id: str | None
    due_at: datetime
    state: OutboxState
    attempts: int
    claim: str | None
    claimed_at: datetime | None
    send_started_at: datetime | None
    provider_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    variant: str | None = None  # which subject/headline variant this email carries

    def email(self) -> EmailMessage:
        """The stored message, parsed with the delivery policy."""
        return message_from_bytes(self.message)


@dataclass(frozen=True)
class QueuedEmail:
    """One message for `Outbox.enqueue_many` (the arguments of `Outbox.enqueue`)."""

    campaign_id: str
    customer_id: str
    recipient: str = field(repr=False)
    message: EmailMessage | bytes = field(repr=False)
    due_at: datetime
    variant: str | None = None


@dataclass(frozen=True)
class SentRecord:
    """One sent email as reports need it: who, when, which variant (no address, no body)."""

    customer_id: str
    sent_at: datetime
    variant: str | None


@dataclass(frozen=True)
class PruneResult:
    """What `Outbox.prune_bodies` cleared."""

    rows: int
    bytes: int


#: rows in these states are done: their bodies are never read again
FINISHED_STATES = ("sent", "failed", "suppressed")


@dataclass(frozen=True)
class Reconciliation:
    """What `Outbox.reconcile` found left in `sending` by an interrupted dispatcher."""

    unknown: list[OutboxItem]
    requeued: list[OutboxItem]


_metadata = sa.MetaData()

#: The outbox table (schema: storage/migrations/versions/outbox_0001.py). Times are
#: fixed-width UTC text (see `_ts`), so both engines compare them the same way.
outbox_table = sa.Table(
    "outbox",
    _metadata,
    # 64-bit on PostgreSQL; on SQLite exactly INTEGER, the rowid alias.
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("campaign_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("message", sa.LargeBinary, nullable=False),
    sa.Column("message_id", sa.Text),
    sa.Column("due_at", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False, server_default=sa.text("'queued'")),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("claim", sa.Text),
    sa.Column("claimed_at", sa.Text),
    sa.Column("send_started_at", sa.Text),
    sa.Column("provider_id", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("sent_at", sa.Text),
    sa.Column("variant", sa.Text),
    sa.UniqueConstraint("campaign_id", "customer_id", name="outbox_key"),
)
_c = outbox_table.c

# SQLite: pages of pruned bodies go back to the disk (auto_vacuum only takes effect on a
# new file; an existing outbox keeps its mode until `reelcast outbox prune --vacuum`).
# FULL: the "send started" mark must survive a power cut, or a crash right after it would
# make an already-sent row look unsent and it would go out twice.
_SQLITE_PRAGMAS = {"auto_vacuum": "INCREMENTAL", "synchronous": "FULL"}

#: PostgreSQL's "deadlock detected" and "could not serialize access": the transaction
#: was rolled back having changed nothing, and every outbox transaction may simply be run
#: again (its UPDATEs are conditional on the state they move from).
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
_ATTEMPTS = 5

_T = TypeVar("_T")

#: A result row of any width.
_Row = sa.Row[*tuple[Any, ...]]

# Fixed-width UTC text sorts like the instants it names, so `due_at <= ?` is a text compare.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("outbox times must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _parse_ts(text: str | None) -> datetime | None:
    return None if text is None else _parse_required_ts(text)


def _parse_required_ts(text: str) -> datetime:
    """A time from a NOT NULL column."""
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _now(now: datetime | None) -> str:
    return _ts(now or datetime.now(UTC))


def _message_id(data: bytes) -> str | None:
    # Only the header section is parsed: the body (an inline GIF) would cost more than the
    # rest of enqueueing. Same value as parsing it all: the parser stops at the blank line.
    head, blank, _ = data.partition(b"\r\n\r\n")
    message_id = BytesHeaderParser().parsebytes(head + blank if blank else data).get("Message-ID")
    return None if message_id is None else str(message_id)


def _item(row: _Row) -> OutboxItem:
    r = row._mapping
    return OutboxItem(
        id=r["id"],
        campaign_id=r["campaign_id"],
        customer_id=r["customer_id"],
        recipient=r["recipient"],
        message=bytes(r["message"]),
        message_id=r["message_id"],
        due_at=_parse_required_ts(r["due_at"]),
        state=OutboxState(r["state"]),
        attempts=r["attempts"],
        claim=r["claim"],
        claimed_at=_parse_ts(r["claimed_at"]),
        send_started_at=_parse_ts(r["send_started_at"]),
        provider_id=r["provider_id"],
        last_error=r["last_error"],
        created_at=_parse_required_ts(r["created_at"]),
        updated_at=_parse_required_ts(r["updated_at"]),
        sent_at=_parse_ts(r["sent_at"]),
        variant=r["variant"],
    )


def _items(rows: Sequence[_Row]) -> list[OutboxItem]:
    """Rows as items, by id (RETURNING gives no order)."""
    return sorted((_item(row) for row in rows), key=lambda item: item.id)


# The two moves every message makes, built once: a statement built per call costs more
# CPU than SQLite takes to run it.
_BEGIN_SEND = (
    sa.update(outbox_table)
    .where(
        _c.id == sa.bindparam("item_id"),
        _c.state == "sending",
        _c.claim == sa.bindparam("item_claim"),
        _c.send_started_at.is_(None),
    )
    .values(send_started_at=sa.bindparam("stamp"), updated_at=sa.bindparam("stamp"))
)
_MARK_SENT = (
    sa.update(outbox_table)
    .where(_c.id == sa.bindparam("item_id"), _c.state.in_(("sending", "unknown")))
    .values(
        state="sent",
        provider_id=sa.bindparam("provider"),
        sent_at=sa.bindparam("stamp"),
        updated_at=sa.bindparam("stamp"),
        attempts=_c.attempts + 1,
        last_error=None,
    )
)


def _take(
    conn: sa.Connection,
    conditions: Sequence[sa.ColumnElement[bool]],
    values: dict[str, Any],
    *,
    order_by: Sequence[sa.ColumnElement[Any]] = (),
    limit: int | None = None,
) -> list[OutboxItem]:
    """Move rows matching `conditions` that nobody else holds: lock them, then one
    conditional UPDATE (the conditions again) sets `values`. Returns them, by id.

    On PostgreSQL a row another transaction has locked is skipped, not waited for
    (`FOR UPDATE SKIP LOCKED`): it is being claimed, recorded or reconciled by someone
    else right now. On SQLite the clause is dropped: the write lock already serializes
    writers. The pick is its own statement, not a subquery of the UPDATE: PostgreSQL may
    run a subquery again for each row it updates, and each run would lock more rows."""
    pick = sa.select(_c.id).where(*conditions).with_for_update(skip_locked=True)
    if order_by:
        pick = pick.order_by(*order_by)
    if limit is not None:
        pick = pick.limit(limit)
    ids = list(conn.execute(pick).scalars())
    if not ids:
        return []
    moved = conn.execute(
        sa.update(outbox_table)
        .where(_c.id.in_(ids), *conditions)
        .values(**values)
        .returning(outbox_table)
    ).all()
    return _items(moved)


class Outbox:
    """Durable queue of composed emails keyed by (campaign_id, customer_id).

    `target` is a SQLite file path or a database URL (storage). Safe to share between
    threads (a pool of connections; each call is its own transaction) and between
    processes and machines (every state move is a single conditional UPDATE; claims never
    overlap).
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        #: The SQLite file, or None when the outbox is on a database server (a URL).
        self.db_path: Path | None = None if is_url(target) else Path(target)
        self._db = open_database(target, branch="outbox", sqlite_pragmas=_SQLITE_PRAGMAS)

    @property
    def is_postgres(self) -> bool:
        """Whether the outbox is on PostgreSQL (else a SQLite file)."""
        return self._db.is_postgres

    def close(self) -> None:
        """Close the database connections."""
        self._db.dispose()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------

    def _write(self, work: Callable[[sa.Connection], _T]) -> _T:
        """Run `work` in one write transaction; on PostgreSQL, again if the server rolled
        it back for a deadlock or a serialization failure (it changed nothing)."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._db.write() as conn:
                    return work(conn)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if attempt == _ATTEMPTS or sqlstate not in _RETRYABLE_SQLSTATES:
                    raise
        raise AssertionError("unreachable")

    def _execute(self, statement: sa.Executable, params: dict[str, Any] | None = None) -> int:
        """Run one write; return the number of rows it changed."""
        return self._write(lambda conn: conn.execute(statement, params).rowcount)

    def _fetch(self, query: sa.Executable) -> Sequence[_Row]:
        with self._db.read() as conn:
            return conn.execute(query).all()

    def _rows(self, query: sa.Select[Any]) -> list[OutboxItem]:
        return [_item(row) for row in self._fetch(query)]

    def _move(self, statement: sa.Update, item_id: int, wanted: str) -> None:
        if self._execute(statement) != 1:
            raise OutboxStateError(f"outbox row {item_id} is not {wanted}")

    def _recipient(self, item_id: int) -> str:
        rows = self._fetch(sa.select(_c.recipient).where(_c.id == item_id))
        if not rows:
            raise OutboxStateError(f"outbox row {item_id} does not exist")
        recipient: str = rows[0].recipient
        return recipient

    def _sqlite_script(self, sql: str) -> None:
        """Run SQLite maintenance outside any transaction, each statement to its end
        (`PRAGMA incremental_vacuum` frees one page per step; `VACUUM` refuses to run in
        a transaction)."""
        with self._db.engine.connect() as conn:
            raw = cast(sqlite3.Connection, conn.connection.dbapi_connection)
            raw.executescript(sql)

    # -- queueing -----------------------------------------------------------------------

    def enqueue(
        self,
        *,
        campaign_id: str,
        customer_id: str,
        recipient: str,
        message: EmailMessage | bytes,
        due_at: datetime,
        now: datetime | None = None,
        variant: str | None = None,
    ) -> bool:
        """Queue `message` for `recipient` at `due_at`; False, changing nothing, if the
        (campaign_id, customer_id) key is already in the outbox in any state.

        `variant` names the subject/headline variant the message carries (no personal
        data: e.g. "subject-b"), so the campaign report can compare variants."""
        entry = QueuedEmail(campaign_id, customer_id, recipient, message, due_at, variant)
        return self.enqueue_many([entry], now=now) == [True]

    def enqueue_many(
        self, entries: Sequence[QueuedEmail], now: datetime | None = None
    ) -> list[bool]:
        """`enqueue` each of `entries` in one transaction (one disk sync for the lot, where
        one a row costs a sync each); per entry, whether it was queued (False: its key was
        already in the outbox, and that row is left as it is)."""
        if not entries:
            return []
        stamp = _now(now)
        rows = [
            {
                "campaign_id": e.campaign_id,
                "customer_id": e.customer_id,
                "recipient": e.recipient,
                "message": data,
                "message_id": _message_id(data),
                "due_at": _ts(e.due_at),
                "created_at": stamp,
                "updated_at": stamp,
                "variant": e.variant,
            }
            for e in entries
            for data in (
                message_to_bytes(e.message) if isinstance(e.message, EmailMessage) else e.message,
            )
        ]
        statement = (
            self._db.insert(outbox_table)
            .on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
            .returning(_c.campaign_id, _c.customer_id)
        )
        # One multi-row INSERT per chunk; RETURNING names the keys that were new.
        new = set(self._write(lambda conn: conn.execute(statement, rows).tuples().all()))
        inserted: list[bool] = []
        for e in entries:
            key = (e.campaign_id, e.customer_id)
            inserted.append(key in new)
            new.discard(key)  # the same key twice in `entries`: the first one was queued
        return inserted

    # -- reading ------------------------------------------------------------------------

    def queued_customers(self, campaign_id: str) -> set[str]:
        """Customer ids the outbox holds for `campaign_id`, in any state (keys only: no
        bodies are read)."""
        rows = self._fetch(sa.select(_c.customer_id).where(_c.campaign_id == campaign_id))
        return {row.customer_id for row in rows}

    def states(self, campaign_id: str) -> dict[str, OutboxState]:
        """Where each of the campaign's emails stands, by customer id (no bodies read)."""
        rows = self._fetch(sa.select(_c.customer_id, _c.state).where(_c.campaign_id == campaign_id))
        return {row.customer_id: OutboxState(row.state) for row in rows}

    def get(self, campaign_id: str, customer_id: str) -> OutboxItem | None:
        """The row for this key, or None."""
        rows = self._rows(
            sa.select(outbox_table).where(
                _c.campaign_id == campaign_id, _c.customer_id == customer_id
            )
        )
        return rows[0] if rows else None

    def items(
        self, *, campaign_id: str | None = None, state: OutboxState | None = None
    ) -> list[OutboxItem]:
        """Rows filtered by campaign and/or state, oldest first (for reports and operators)."""
        query = sa.select(outbox_table).order_by(_c.id)
        if campaign_id is not None:
            query = query.where(_c.campaign_id == campaign_id)
        if state is not None:
            query = query.where(_c.state == str(state))
        return self._rows(query)

    def sent(self, campaign_id: str) -> list[SentRecord]:
        """The campaign's sent emails, oldest first: customer, time, variant. Reads three
        small columns, never the stored bodies, so a report of 100,000 sends stays small."""
        rows = self._fetch(
            sa.select(_c.customer_id, sa.func.coalesce(_c.sent_at, _c.updated_at), _c.variant)
            .where(_c.campaign_id == campaign_id, _c.state == "sent")
            .order_by(_c.id)
        )
        return [
            SentRecord(customer_id, _parse_required_ts(at), variant)
            for customer_id, at, variant in rows
        ]

    def counts(self, campaign_id: str | None = None) -> dict[OutboxState, int]:
        """Number of rows in each state (every state present, zeros included)."""
        result = dict.fromkeys(OutboxState, 0)
        query = sa.select(_c.state, sa.func.count()).group_by(_c.state)
        if campaign_id is not None:
            query = query.where(_c.campaign_id == campaign_id)
        for state, n in self._fetch(query):
            result[OutboxState(state)] = int(n)
        return result

    def recipients(self, customer_id: str) -> set[str]:
        """Addresses this customer was (to be) mailed at, across campaigns."""
        rows = self._fetch(sa.select(_c.recipient).distinct().where(_c.customer_id == customer_id))
        return {row.recipient for row in rows}

    def sent_counts(
        self, since: datetime, *, exclude_campaign: str | None = None
    ) -> dict[str, int]:
        """Emails sent (or possibly sent: `unknown`) per customer since `since`.

        Feeds the frequency cap; `exclude_campaign` leaves out the campaign being run, so
        re-running a campaign does not count its own emails against it.
        """
        query = (
            sa.select(_c.customer_id, sa.func.count())
            .where(
                _c.state.in_(("sent", "unknown")),
                sa.func.coalesce(_c.sent_at, _c.send_started_at, _c.updated_at) >= _ts(since),
            )
            .group_by(_c.customer_id)
        )
        if exclude_campaign is not None:
            query = query.where(_c.campaign_id != exclude_campaign)
        return {customer_id: int(n) for customer_id, n in self._fetch(query)}

    # -- retention ----------------------------------------------------------------------

    def prune_bodies(self, finished_before: datetime) -> PruneResult:
        """Drop the stored bodies (each carries its GIF) of emails finished (sent, failed
        or suppressed) before `finished_before`. The rows stay, with their keys, states,
        message and provider ids: exactly-once, reports and the audit need nothing more.
        Queued, in-flight and `unknown` rows keep their bodies (they may still be sent).

        On SQLite the freed pages then go back to the disk (incremental vacuum, on an
        outbox made with it). On PostgreSQL the UPDATE is all: autovacuum makes the old
        bodies' space reusable, and the server never shrinks files unasked."""
        finished = sa.and_(
            _c.state.in_(FINISHED_STATES),
            _c.updated_at <= _ts(finished_before),
            sa.func.length(_c.message) > 0,
        )

        def prune(conn: sa.Connection) -> tuple[int, int]:
            rows, size = conn.execute(
                sa.select(
                    sa.func.count(), sa.func.coalesce(sa.func.sum(sa.func.length(_c.message)), 0)
                ).where(finished)
            ).one()
            conn.execute(sa.update(outbox_table).where(finished).values(message=b""))
            return int(rows), int(size)

        rows, size = self._write(prune)
        if rows and self._db.is_sqlite:
            self._sqlite_script("PRAGMA incremental_vacuum;")
        return PruneResult(rows=rows, bytes=size)

    def vacuum(self) -> None:
        """Give the space of pruned bodies back: on SQLite, `VACUUM` rewrites the file
        (and turns on incremental vacuum for an outbox made before it). On PostgreSQL,
        `VACUUM outbox` makes the space reusable at once without locking out dispatchers;
        returning it to the file system would take `VACUUM FULL`, which locks the table
        for as long as it rewrites it: an operator's call, not done here."""
        if self._db.is_sqlite:
            self._sqlite_script("VACUUM;")
            return
        with self._db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(sa.text("VACUUM outbox"))

    def erase(self, customer_id: str) -> int:
        """Right to erasure: blank the address and message of every row of this customer.

        The rows stay (with their states) so the campaign keys still say "already
        handled" and nothing is ever queued twice. Returns the rows changed.
        """
        return self._execute(
            sa.update(outbox_table)
            .where(_c.customer_id == customer_id)
            .values(recipient="[erased]", message=b"", last_error=None)
        )

    # -- dispatching --------------------------------------------------------------------

    def claim_due(
        self, now: datetime, limit: int, *, due_by: datetime | None = None
    ) -> list[OutboxItem]:
        """Atomically move up to `limit` queued rows due by `now` (or by `due_by`, for
        providers that hold messages until their time) to `sending` and return them,
        earliest due first. Two dispatchers never claim the same row, and on PostgreSQL
        one never waits for another's claim: it takes the next rows nobody holds."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        stamp = _ts(now)
        due = (_c.state == "queued", _c.due_at <= _ts(due_by or now))
        claim = secrets.token_hex(8)
        values = {"state": "sending", "claim": claim, "claimed_at": stamp, "updated_at": stamp}
        items = self._write(
            lambda conn: _take(conn, due, values, order_by=(_c.due_at, _c.id), limit=limit)
        )
        return sorted(items, key=lambda item: (item.due_at, item.id))

    def begin_send(self, item: OutboxItem, now: datetime | None = None) -> bool:
        """Durably record that `item` is about to be handed to the transport.

        False if this claim no longer owns the row (reconciled or released meanwhile):
        then the caller must not send it.
        """
        stamp = _now(now)
        changed = self._execute(
            _BEGIN_SEND, {"item_id": item.id, "item_claim": item.claim, "stamp": stamp}
        )
        return changed == 1

    def cancel_send(self, item: OutboxItem, now: datetime | None = None) -> bool:
        """Undo `begin_send` for a message the transport certainly never took (it could
        not even connect), so the row can be released. Not for any doubtful outcome."""
        changed = self._execute(
            sa.update(outbox_table)
            .where(_c.id == item.id, _c.state == "sending", _c.claim == item.claim)
            .values(send_started_at=None, updated_at=_now(now))
        )
        return changed == 1

    def mark_sent(self, item_id: int, provider_id: str, now: datetime | None = None) -> None:
        """Record delivery to the provider. Accepted from `unknown` too: if a reconcile
        raced a slow send, the provider's answer is the truth."""
        params = {"item_id": item_id, "provider": provider_id, "stamp": _now(now)}
        if self._execute(_MARK_SENT, params) != 1:
            raise OutboxStateError(f"outbox row {item_id} is not sending")

    def mark_failed(self, item_id: int, error: str, now: datetime | None = None) -> None:
        """Give up on a claimed row for good; `error` is stored without any address."""
        error = redact_addresses(error, self._recipient(item_id))
        started = sa.case((_c.send_started_at.is_not(None), 1), else_=0)
        self._move(
            sa.update(outbox_table)
            .where(_c.id == item_id, _c.state == "sending")
            .values(
                state="failed",
                last_error=error,
                updated_at=_now(now),
                attempts=_c.attempts + started,
            ),
            item_id,
            "sending",
        )

    def mark_suppressed(self, item_id: int, now: datetime | None = None) -> None:
        """The recipient opted out (or bounced) before sending: the row will never go out."""
        self._move(
            sa.update(outbox_table)
            .where(
                _c.id == item_id,
                _c.state.in_(("queued", "sending")),
                _c.send_started_at.is_(None),
            )
            .values(state="suppressed", updated_at=_now(now)),
            item_id,
            "queued or claimed",
        )

    def mark_unknown(self, item_id: int, error: str, now: datetime | None = None) -> None:
        """The send may or may not have happened: park the row for an operator."""
        error = redact_addresses(error, self._recipient(item_id))
        self._move(
            sa.update(outbox_table)
            .where(_c.id == item_id, _c.state == "sending")
            .values(
                state="unknown",
                last_error=error,
                updated_at=_now(now),
                attempts=_c.attempts + 1,
            ),
            item_id,
            "sending",
        )

    def retry(
        self, item_id: int, error: str, due_at: datetime, now: datetime | None = None
    ) -> None:
        """Put a row whose send certainly failed back in the queue, due at `due_at`."""
        error = redact_addresses(error, self._recipient(item_id))
        self._move(
            sa.update(outbox_table)
            .where(_c.id == item_id, _c.state == "sending")
            .values(
                state="queued",
                last_error=error,
                due_at=_ts(due_at),
                updated_at=_now(now),
                attempts=_c.attempts + 1,
                claim=None,
                claimed_at=None,
                send_started_at=None,
            ),
            item_id,
            "sending",
        )

    def release(self, items: list[OutboxItem], now: datetime | None = None) -> int:
        """Return claimed rows whose send never started to the queue, without charging an
        attempt.

        A row whose send started is never released, whatever the caller believes: once a
        message may have reached the transport it can only become `sent` or `unknown`
        (a reconcile parks it), or a mail server that took it would get it twice. Rows
        another claim owns now are left alone too.
        """
        stamp = _now(now)
        released = 0
        for item in items:
            released += self._execute(
                sa.update(outbox_table)
                .where(
                    _c.id == item.id,
                    _c.state == "sending",
                    _c.claim == item.claim,
                    _c.send_started_at.is_(None),
                )
                .values(state="queued", claim=None, claimed_at=None, updated_at=stamp)
            )
        return released

    def renew(self, items: list[OutboxItem], now: datetime | None = None) -> int:
        """Renew this dispatcher's lease on claimed rows not yet started: a reconcile in
        another process (or on another machine) takes back only claims older than its
        stale window, so a long pass keeps what it is still working through. Returns how
        many it still holds."""
        if not items:
            return 0
        stamp = _now(now)
        by_claim: dict[str | None, list[int]] = {}
        for item in items:
            by_claim.setdefault(item.claim, []).append(item.id)

        def renew(conn: sa.Connection) -> int:
            held = 0
            for claim, ids in by_claim.items():
                held += conn.execute(
                    sa.update(outbox_table)
                    .where(
                        _c.claim == claim,
                        _c.state == "sending",
                        _c.send_started_at.is_(None),
                        _c.id.in_(ids),
                    )
                    .values(claimed_at=stamp, updated_at=stamp)
                ).rowcount
            return held

        return self._write(renew)

    def reconcile(
        self, now: datetime, *, stale_after: timedelta = timedelta(minutes=10)
    ) -> Reconciliation:
        """Resolve rows left in `sending` for longer than `stale_after` (a crashed dispatcher).

        Never started → queued again. Started → `unknown`: they may have been delivered,
        so nothing re-sends them automatically. `stale_after` keeps a dispatcher in another
        process that is still working from having its rows taken away. On PostgreSQL a row
        someone holds at this moment (its owner recording it, another reconcile) is left
        to them, not waited for.
        """
        cutoff = _ts(now - stale_after)
        stamp = _ts(now)
        never_started = (
            _c.state == "sending",
            _c.send_started_at.is_(None),
            _c.claimed_at <= cutoff,
        )
        started = (_c.state == "sending", _c.send_started_at <= cutoff)

        def reconcile(conn: sa.Connection) -> Reconciliation:
            requeued = _take(
                conn,
                never_started,
                {"state": "queued", "claim": None, "claimed_at": None, "updated_at": stamp},
            )
            unknown = _take(
                conn,
                started,
                {
                    "state": "unknown",
                    "updated_at": stamp,
                    "last_error": "dispatch was interrupted after the send started;"
                    " outcome unknown",
                },
            )
            return Reconciliation(unknown=unknown, requeued=requeued)

        return self._write(reconcile)

    # -- operators: unknown rows and previews (delivery.resend, flows/outbox_cli.py) --

    def requeue_unknown(
        self, item_id: int, due_at: datetime, reason: str, now: datetime | None = None
    ) -> None:
        """Queue an `unknown` row again: only once the provider or an operator confirmed
        it was not delivered. `reason` (why that is known) is kept in `last_error`."""
        self._move(
            sa.update(outbox_table)
            .where(_c.id == item_id, _c.state == "unknown")
            .values(
                state="queued",
                due_at=_ts(due_at),
                last_error=redact_addresses(reason),
                updated_at=_now(now),
                claim=None,
                claimed_at=None,
                send_started_at=None,
            ),
            item_id,
            "unknown",
        )

    def for_customer(self, customer_id: str) -> list[OutboxItem]:
        """Every row of one customer, newest first."""
        return self._rows(
            sa.select(outbox_table)
            .where(_c.customer_id == customer_id)
            .order_by(_c.created_at.desc(), _c.id.desc())
        )

    def campaigns(self) -> list[str]:
        """Every campaign id in the outbox, in the order first queued."""
        rows = self._fetch(
            sa.select(_c.campaign_id).group_by(_c.campaign_id).order_by(sa.func.min(_c.id))
        )
        return [row.campaign_id for row in rows]
