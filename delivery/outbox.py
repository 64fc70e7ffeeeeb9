"""The outbox: every email of every campaign, sent exactly once, on SQLite.

One row per (campaign, customer), enforced by a UNIQUE key, so re-running a campaign
queues nothing twice. A row moves

    queued ──claim──► sending ──► sent | failed | suppressed | unknown
       ▲                 │
       └──── retry / release (only when nothing can have gone out)

`sending` is split in two moments: claimed (the dispatcher owns the row) and send started
(recorded durably just before the transport is called). After a crash, a row that was
claimed but never started is safely queued again; a row whose send had started may have
been delivered, so it becomes `unknown` and is never sent again without an operator.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from enum import StrEnum
from pathlib import Path
from typing import Any

from delivery.errors import DeliveryError, redact_addresses
from delivery.policy import message_from_bytes, message_to_bytes


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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY,
    campaign_id     TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    message         BLOB    NOT NULL,
    message_id      TEXT,
    due_at          TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN
                        ('queued', 'sending', 'sent', 'failed', 'suppressed', 'unknown')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    claim           TEXT,
    claimed_at      TEXT,
    send_started_at TEXT,
    provider_id     TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    sent_at         TEXT,
    UNIQUE (campaign_id, customer_id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, due_at);
"""

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


def _item(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        campaign_id=row["campaign_id"],
        customer_id=row["customer_id"],
        recipient=row["recipient"],
        message=bytes(row["message"]),
        message_id=row["message_id"],
        due_at=_parse_required_ts(row["due_at"]),
        state=OutboxState(row["state"]),
        attempts=row["attempts"],
        claim=row["claim"],
        claimed_at=_parse_ts(row["claimed_at"]),
        send_started_at=_parse_ts(row["send_started_at"]),
        provider_id=row["provider_id"],
        last_error=row["last_error"],
        created_at=_parse_required_ts(row["created_at"]),
        updated_at=_parse_required_ts(row["updated_at"]),
        sent_at=_parse_ts(row["sent_at"]),
        variant=row["variant"],
    )


class Outbox:
    """Durable queue of composed emails keyed by (campaign_id, customer_id).

    Safe to share between threads (one connection behind a lock) and between processes
    (SQLite WAL; every state move is a single conditional UPDATE).
    """

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db_path = db_path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            db_path, isolation_level=None, timeout=30.0, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        # Pages of pruned bodies go back to the disk. Set before anything else: a new file
        # takes it; an existing outbox keeps its mode until `reelcast outbox prune --vacuum`.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: the "send started" mark must survive a power cut, or a crash right after
        # it would make an already-sent row look unsent and it would go out twice.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._add_column("variant", "TEXT")

    def _add_column(self, name: str, sql_type: str) -> None:
        # Additive migration: outboxes created before the column existed get it (NULL in
        # old rows). The check makes it idempotent; a concurrent opener may win the race,
        # which SQLite reports as a duplicate column and which we accept.
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if name not in columns:
            try:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {sql_type}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one write; return the number of rows it changed."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[OutboxItem]:
        return [_item(row) for row in self._fetch(sql, params)]

    def _move(self, sql: str, params: tuple[Any, ...], item_id: int, wanted: str) -> None:
        if self._execute(sql, params) != 1:
            raise OutboxStateError(f"outbox row {item_id} is not {wanted}")

    def _recipient(self, item_id: int) -> str:
        rows = self._fetch("SELECT recipient FROM outbox WHERE id = ?", (item_id,))
        if not rows:
            raise OutboxStateError(f"outbox row {item_id} does not exist")
        recipient: str = rows[0]["recipient"]
        return recipient

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
        stamp = _now(now)
        rows = [
            (
                e.campaign_id,
                e.customer_id,
                e.recipient,
                data,
                _message_id(data),
                _ts(e.due_at),
                stamp,
                stamp,
                e.variant,
            )
            for e in entries
            for data in (
                message_to_bytes(e.message) if isinstance(e.message, EmailMessage) else e.message,
            )
        ]
        inserted: list[bool] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cursor = self._db.execute(
                        "INSERT INTO outbox (campaign_id, customer_id, recipient, message,"
                        " message_id, due_at, created_at, updated_at, variant)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (campaign_id, customer_id) DO NOTHING",
                        row,
                    )
                    inserted.append(cursor.rowcount == 1)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return inserted

    def queued_customers(self, campaign_id: str) -> set[str]:
        """Customer ids the outbox holds for `campaign_id`, in any state (keys only: no
        bodies are read)."""
        rows = self._fetch("SELECT customer_id FROM outbox WHERE campaign_id = ?", (campaign_id,))
        return {row["customer_id"] for row in rows}

    def get(self, campaign_id: str, customer_id: str) -> OutboxItem | None:
        """The row for this key, or None."""
        rows = self._rows(
            "SELECT * FROM outbox WHERE campaign_id = ? AND customer_id = ?",
            (campaign_id, customer_id),
        )
        return rows[0] if rows else None

    def items(
        self, *, campaign_id: str | None = None, state: OutboxState | None = None
    ) -> list[OutboxItem]:
        """Rows filtered by campaign and/or state, oldest first (for reports and operators)."""
        return self._rows(
            "SELECT * FROM outbox WHERE (?1 IS NULL OR campaign_id = ?1)"
            " AND (?2 IS NULL OR state = ?2) ORDER BY id",
            (campaign_id, None if state is None else str(state)),
        )

    def sent(self, campaign_id: str) -> list[SentRecord]:
        """The campaign's sent emails, oldest first: customer, time, variant. Reads three
        small columns, never the stored bodies, so a report of 100,000 sends stays small."""
        rows = self._fetch(
            "SELECT customer_id, COALESCE(sent_at, updated_at) AS at, variant FROM outbox"
            " WHERE campaign_id = ? AND state = 'sent' ORDER BY id",
            (campaign_id,),
        )
        return [
            SentRecord(row["customer_id"], _parse_required_ts(row["at"]), row["variant"])
            for row in rows
        ]

    def prune_bodies(self, finished_before: datetime) -> PruneResult:
        """Drop the stored bodies (each carries its GIF) of emails finished (sent, failed
        or suppressed) before `finished_before`. The rows stay, with their keys, states,
        message and provider ids: exactly-once, reports and the audit need nothing more.
        Queued, in-flight and `unknown` rows keep their bodies (they may still be sent)."""
        marks = ",".join("?" * len(FINISHED_STATES))
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(length(message)), 0) FROM outbox"
                f" WHERE state IN ({marks}) AND updated_at <= ? AND length(message) > 0",
                (*FINISHED_STATES, _ts(finished_before)),
            ).fetchone()
            self._db.execute(
                f"UPDATE outbox SET message = X'' WHERE state IN ({marks}) AND updated_at <= ?"
                " AND length(message) > 0",
                (*FINISHED_STATES, _ts(finished_before)),
            )
            if row[0]:
                # executescript steps it to the end (execute frees one page per call)
                self._db.executescript("PRAGMA incremental_vacuum;")
        return PruneResult(rows=int(row[0]), bytes=int(row[1]))

    def vacuum(self) -> None:
        """Give the space of pruned bodies back to the file system."""
        with self._lock:
            self._db.execute("VACUUM")

    def counts(self, campaign_id: str | None = None) -> dict[OutboxState, int]:
        """Number of rows in each state (every state present, zeros included)."""
        result = dict.fromkeys(OutboxState, 0)
        rows = self._fetch(
            "SELECT state, COUNT(*) AS n FROM outbox WHERE (?1 IS NULL OR campaign_id = ?1)"
            " GROUP BY state",
            (campaign_id,),
        )
        for row in rows:
            result[OutboxState(row["state"])] = row["n"]
        return result

    def recipients(self, customer_id: str) -> set[str]:
        """Addresses this customer was (to be) mailed at, across campaigns."""
        rows = self._fetch(
            "SELECT DISTINCT recipient FROM outbox WHERE customer_id = ?", (customer_id,)
        )
        return {row["recipient"] for row in rows}

    def erase(self, customer_id: str) -> int:
        """Right to erasure: blank the address and message of every row of this customer.

        The rows stay (with their states) so the campaign keys still say "already
        handled" and nothing is ever queued twice. Returns the rows changed.
        """
        return self._execute(
            "UPDATE outbox SET recipient = '[erased]', message = X'', last_error = NULL"
            " WHERE customer_id = ?",
            (customer_id,),
        )

    def sent_counts(
        self, since: datetime, *, exclude_campaign: str | None = None
    ) -> dict[str, int]:
        """Emails sent (or possibly sent: `unknown`) per customer since `since`.

        Feeds the frequency cap; `exclude_campaign` leaves out the campaign being run, so
        re-running a campaign does not count its own emails against it.
        """
        rows = self._fetch(
            "SELECT customer_id, COUNT(*) AS n FROM outbox WHERE state IN ('sent', 'unknown')"
            " AND COALESCE(sent_at, send_started_at, updated_at) >= ?"
            " AND (?2 IS NULL OR campaign_id != ?2) GROUP BY customer_id",
            (_ts(since), exclude_campaign),
        )
        return {row["customer_id"]: row["n"] for row in rows}

    def claim_due(
        self, now: datetime, limit: int, *, due_by: datetime | None = None
    ) -> list[OutboxItem]:
        """Atomically move up to `limit` queued rows due by `now` (or by `due_by`, for
        providers that hold messages until their time) to `sending` and return them,
        earliest due first. Two dispatchers never claim the same row."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        stamp = _ts(now)
        claim = secrets.token_hex(8)
        items = self._rows(
            "UPDATE outbox SET state = 'sending', claim = ?1, claimed_at = ?2, updated_at = ?2"
            " WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND due_at <= ?4"
            " ORDER BY due_at, id LIMIT ?3) RETURNING *",
            (claim, stamp, limit, _ts(due_by or now)),
        )
        return sorted(items, key=lambda item: (item.due_at, item.id))

    def begin_send(self, item: OutboxItem, now: datetime | None = None) -> bool:
        """Durably record that `item` is about to be handed to the transport.

        False if this claim no longer owns the row (reconciled or released meanwhile):
        then the caller must not send it.
        """
        stamp = _now(now)
        changed = self._execute(
            "UPDATE outbox SET send_started_at = ?, updated_at = ? WHERE id = ?"
            " AND state = 'sending' AND claim = ? AND send_started_at IS NULL",
            (stamp, stamp, item.id, item.claim),
        )
        return changed == 1

    def cancel_send(self, item: OutboxItem, now: datetime | None = None) -> bool:
        """Undo `begin_send` for a message the transport certainly never took (it could
        not even connect), so the row can be released. Not for any doubtful outcome."""
        stamp = _now(now)
        changed = self._execute(
            "UPDATE outbox SET send_started_at = NULL, updated_at = ? WHERE id = ?"
            " AND state = 'sending' AND claim = ?",
            (stamp, item.id, item.claim),
        )
        return changed == 1

    def mark_sent(self, item_id: int, provider_id: str, now: datetime | None = None) -> None:
        """Record delivery to the provider. Accepted from `unknown` too: if a reconcile
        raced a slow send, the provider's answer is the truth."""
        stamp = _now(now)
        self._move(
            "UPDATE outbox SET state = 'sent', provider_id = ?, sent_at = ?, updated_at = ?,"
            " attempts = attempts + 1, last_error = NULL"
            " WHERE id = ? AND state IN ('sending', 'unknown')",
            (provider_id, stamp, stamp, item_id),
            item_id,
            "sending",
        )

    def mark_failed(self, item_id: int, error: str, now: datetime | None = None) -> None:
        """Give up on a claimed row for good; `error` is stored without any address."""
        error = redact_addresses(error, self._recipient(item_id))
        stamp = _now(now)
        self._move(
            "UPDATE outbox SET state = 'failed', last_error = ?, updated_at = ?,"
            " attempts = attempts + (send_started_at IS NOT NULL)"
            " WHERE id = ? AND state = 'sending'",
            (error, stamp, item_id),
            item_id,
            "sending",
        )

    def mark_suppressed(self, item_id: int, now: datetime | None = None) -> None:
        """The recipient opted out (or bounced) before sending: the row will never go out."""
        self._move(
            "UPDATE outbox SET state = 'suppressed', updated_at = ?"
            " WHERE id = ? AND state IN ('queued', 'sending') AND send_started_at IS NULL",
            (_now(now), item_id),
            item_id,
            "queued or claimed",
        )

    def mark_unknown(self, item_id: int, error: str, now: datetime | None = None) -> None:
        """The send may or may not have happened: park the row for an operator."""
        error = redact_addresses(error, self._recipient(item_id))
        stamp = _now(now)
        self._move(
            "UPDATE outbox SET state = 'unknown', last_error = ?, updated_at = ?,"
            " attempts = attempts + 1 WHERE id = ? AND state = 'sending'",
            (error, stamp, item_id),
            item_id,
            "sending",
        )

    def retry(
        self, item_id: int, error: str, due_at: datetime, now: datetime | None = None
    ) -> None:
        """Put a row whose send certainly failed back in the queue, due at `due_at`."""
        error = redact_addresses(error, self._recipient(item_id))
        self._move(
            "UPDATE outbox SET state = 'queued', last_error = ?, due_at = ?, updated_at = ?,"
            " attempts = attempts + 1, claim = NULL, claimed_at = NULL, send_started_at = NULL"
            " WHERE id = ? AND state = 'sending'",
            (error, _ts(due_at), _now(now), item_id),
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
                "UPDATE outbox SET state = 'queued', claim = NULL, claimed_at = NULL,"
                " updated_at = ?"
                " WHERE id = ? AND state = 'sending' AND claim = ? AND send_started_at IS NULL",
                (stamp, item.id, item.claim),
            )
        return released

    def renew(self, items: list[OutboxItem], now: datetime | None = None) -> int:
        """Renew this dispatcher's lease on claimed rows not yet started: a reconcile in
        another process takes back only claims older than its stale window, so a long
        pass keeps what it is still working through. Returns how many it still holds."""
        if not items:
            return 0
        stamp = _now(now)
        claims = {item.claim for item in items}
        held = 0
        for claim in claims:
            ids = [item.id for item in items if item.claim == claim]
            marks = ",".join("?" * len(ids))
            held += self._execute(
                f"UPDATE outbox SET claimed_at = ?, updated_at = ? WHERE claim = ?"
                f" AND state = 'sending' AND send_started_at IS NULL AND id IN ({marks})",
                (stamp, stamp, claim, *ids),
            )
        return held

    def reconcile(
        self, now: datetime, *, stale_after: timedelta = timedelta(minutes=10)
    ) -> Reconciliation:
        """Resolve rows left in `sending` for longer than `stale_after` (a crashed dispatcher).

        Never started → queued again. Started → `unknown`: they may have been delivered,
        so nothing re-sends them automatically. `stale_after` keeps a dispatcher in another
        process that is still working from having its rows taken away.
        """
        cutoff = _ts(now - stale_after)
        stamp = _ts(now)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                requeued = self._db.execute(
                    "UPDATE outbox SET state = 'queued', claim = NULL, claimed_at = NULL,"
                    " updated_at = ? WHERE state = 'sending' AND send_started_at IS NULL"
                    " AND claimed_at <= ? RETURNING *",
                    (stamp, cutoff),
                ).fetchall()
                unknown = self._db.execute(
                    "UPDATE outbox SET state = 'unknown', updated_at = ?, last_error ="
                    " 'dispatch was interrupted after the send started; outcome unknown'"
                    " WHERE state = 'sending' AND send_started_at <= ? RETURNING *",
                    (stamp, cutoff),
                ).fetchall()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return Reconciliation(
            unknown=sorted((_item(r) for r in unknown), key=lambda i: i.id),
            requeued=sorted((_item(r) for r in requeued), key=lambda i: i.id),
        )

    # -- operators: unknown rows and previews (delivery.resend, flows/outbox_cli.py) --

    def requeue_unknown(
        self, item_id: int, due_at: datetime, reason: str, now: datetime | None = None
    ) -> None:
        """Queue an `unknown` row again: only once the provider or an operator confirmed
        it was not delivered. `reason` (why that is known) is kept in `last_error`."""
        stamp = _now(now)
        self._move(
            "UPDATE outbox SET state = 'queued', due_at = ?, last_error = ?, updated_at = ?,"
            " claim = NULL, claimed_at = NULL, send_started_at = NULL"
            " WHERE id = ? AND state = 'unknown'",
            (_ts(due_at), redact_addresses(reason), stamp, item_id),
            item_id,
            "unknown",
        )

    def for_customer(self, customer_id: str) -> list[OutboxItem]:
        """Every row of one customer, newest first."""
        return self._rows(
            "SELECT * FROM outbox WHERE customer_id = ? ORDER BY created_at DESC, id DESC",
            (customer_id,),
        )

    def campaigns(self) -> list[str]:
        """Every campaign id in the outbox, in the order first queued."""
        rows = self._fetch("SELECT campaign_id FROM outbox GROUP BY campaign_id ORDER BY MIN(id)")
        return [row["campaign_id"] for row in rows]
