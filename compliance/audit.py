"""A tamper-evident audit log: append-only, keyed hash-chained records of every decision.

Each record's digest is an HMAC-SHA256, under the audit key, of its content and the
previous record's digest, so editing, deleting or reordering any record breaks the chain
from that record on, and nobody without the key can compute a new chain over an edited
record. The key is given by the caller and lives neither in the database nor beside it.
Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), so honest code cannot
change history by accident. Someone with the file can drop the triggers and cut off the
tail, which the chain alone would not show: a checkpoint (record count and last digest,
itself keyed) is written with every batch, and `verify` wants the newest one to match the
log's head exactly. A missing checkpoint, or one behind or ahead of the head, fails.
(Cutting the log *and* its checkpoints back to an earlier checkpoint together is only
caught by a copy of the checkpoints kept where the workspace's writers cannot write.)

Where it lives. The target is a SQLite file (`audit.sqlite` in the workspace) or a
database URL (`REELCAST_DATABASE_URL`, PostgreSQL), through the same statements
(storage/). Beside a SQLite file the checkpoints are a file, `audit.checkpoints`,
appended before the batch commits (and put back to the old head if the commit fails).
In a database named by URL they are rows of `audit_checkpoints`, written in the batch's
own transaction: there is no file system the workers share, and a checkpoint can no
longer be out of step with the log it vouches for. That keeps what the file protected
against: a tail cut off, or a checkpoint deleted, rolled back alone or forged, still
fails `verify` (the newest row must be the head, under the key; a table without rows is
a missing checkpoint), and the table has the same append-only triggers. What it was
never protected against is the same too: whoever can drop the triggers can delete the
tail and the newest checkpoints together, as whoever could write the workspace could cut
both files. On PostgreSQL that power can be withheld, which a file in the workspace could
not: let reelcast's role own neither table and grant it only SELECT and INSERT on
`audit`, `audit_checkpoints` and `audit_meta`. `checkpoints=` still names a file
instead, e.g. on storage the database's users cannot write.

One order. Appends serialize on the chain, whoever makes them: on SQLite under the write
lock (`BEGIN IMMEDIATE`), on PostgreSQL under an advisory transaction lock taken before
the head is read, so writers in many processes or machines chain one after the other and
never onto the same record (`seq` is the primary key as well). `verify` takes the same
lock, so it never sees a batch without its checkpoint.

Logs written by reelcast before the key (plain SHA-256 chains) are keyed on their first
append by this version, or by `seal()`: an "audit-key" record, keyed, chains onto the old
head, so the old records cannot be rewritten from then on; `verify` checks them with the
plain hash. Until then, `verify` reports such a log as unkeyed, not as tampered.

Records name customers by pseudonymous id only, so erasing a customer's personal data
elsewhere (`reelcast forget`) leaves the chain valid and still explains the decisions.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError

from compliance.errors import ComplianceError
from storage import Target, is_url
from storage.database import Database, open_database

GENESIS = "0" * 64

#: the record that keys a log written before the audit key (see `AuditLog.seal`)
KEYED = "audit-key"

#: The PostgreSQL advisory lock that orders appends (a 64-bit id derived from a label).
_CHAIN_LOCK = int.from_bytes(
    hashlib.sha256(b"reelcast audit chain").digest()[:8], "big", signed=True
)

#: 64-bit on PostgreSQL; on SQLite exactly INTEGER, so that `seq` is the rowid.
_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_metadata = sa.MetaData()
audit = sa.Table(
    "audit",
    _metadata,
    sa.Column("seq", _BIG, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("campaign", sa.Text, nullable=False),
    sa.Column("subject", sa.Text),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Index("audit_subject", "subject"),
)
audit_meta = sa.Table(
    "audit_meta",
    _metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    _metadata,
    sa.Column("id", _BIG, primary_key=True, autoincrement=True),
    sa.Column("records", sa.BigInteger, nullable=False),
    sa.Column("head", sa.Text, nullable=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("mac", sa.Text),
)

#: The triggers that refuse changes to history: (name, table, event). TRUNCATE only on
#: PostgreSQL (SQLite has none; its DELETE trigger covers a `DELETE FROM audit`).
_GUARDS = [
    ("audit_no_update", "audit", "UPDATE"),
    ("audit_no_delete", "audit", "DELETE"),
    ("audit_checkpoints_no_update", "audit_checkpoints", "UPDATE"),
    ("audit_checkpoints_no_delete", "audit_checkpoints", "DELETE"),
]
_PG_GUARDS = [
    ("audit_no_truncate", "audit", "TRUNCATE"),
    ("audit_checkpoints_no_truncate", "audit_checkpoints", "TRUNCATE"),
]
_PG_GUARD_FUNCTION = (
    "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'"
    " USING ERRCODE = 'restrict_violation'; END $$"
)


@dataclass(frozen=True)
class Record:
    """One audited decision. `subject` is a pseudonymous customer id, or None."""

    seq: int
    at: str
    kind: str
    campaign: str
    subject: str | None
    data: dict[str, object]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verification:
    """The outcome of checking the chain; `first_bad` is the first record that fails.

    `status` says what kind of failure it is: "tampered" (a record, the order, the tail or
    the checkpoints do not hold), "unkeyed" (a log from a reelcast before the audit key,
    whose plain chain holds: not tamper-proof, not tampered either), or "wrong-key" (the
    log was keyed with another key than the one given). `unkeyed_records` counts the
    records written before the key, checked with the plain hash.
    """

    ok: bool
    records: int
    first_bad: int | None = None
    problem: str = ""
    status: Literal["ok", "tampered", "unkeyed", "wrong-key"] = "ok"
    unkeyed_records: int = 0


def _canonical(data: Mapping[str, object]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _fields(
    prev: str, seq: int, at: str, kind: str, campaign: str, subject: str | None, data: str
) -> bytes:
    return "\x1f".join([prev, str(seq), at, kind, campaign, subject or "", data]).encode("utf-8")


def _plain_digest(
    prev: str, seq: int, at: str, kind: str, campaign: str, subject: str | None, data: str
) -> str:
    """The digest of a record written before the audit key (anyone can compute it)."""
    return hashlib.sha256(_fields(prev, seq, at, kind, campaign, subject, data)).hexdigest()


def _keyed_digest(
    key: bytes,
    prev: str,
    seq: int,
    at: str,
    kind: str,
    campaign: str,
    subject: str | None,
    data: str,
) -> str:
    message = _fields(prev, seq, at, kind, campaign, subject, data)
    return hmac.new(key, b"record\x1f" + message, hashlib.sha256).hexdigest()


def _checkpoint_mac(key: bytes, count: int, last_hash: str, at: str) -> str:
    message = f"checkpoint\x1f{count}\x1f{last_hash}\x1f{at}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short fingerprint of `key` (an HMAC of a fixed label: it reveals nothing of it),
    kept in the log so that `verify` can tell a different key from a tampered record."""
    return hmac.new(key, b"reelcast audit key id", hashlib.sha256).hexdigest()[:16]


class AuditLog:
    """The audit log of one workspace: in a SQLite file with a checkpoint file beside it,
    or in a database named by URL (PostgreSQL) with its checkpoints in a table.

    `key` is the audit key (HMAC-SHA256): appending and verifying need it; reading
    records does not. It must not be stored in the database or the checkpoint file.
    `checkpoints` names a checkpoint file to use instead of the default place.
    Safe to share between threads; any number of processes may append at once.
    """

    def __init__(
        self, target: Target, *, key: bytes | None = None, checkpoints: Path | None = None
    ) -> None:
        if key is not None and len(key) < 16:
            raise ValueError("the audit key must be at least 16 bytes")
        self.target = target
        #: the SQLite file, or None when the log is in a database named by URL
        self.db_path = None if is_url(target) else Path(target)
        #: the checkpoint file, or None when the checkpoints are in `audit_checkpoints`
        self.checkpoints: Path | None
        if checkpoints is not None:
            self.checkpoints = Path(checkpoints)
        elif self.db_path is not None:
            self.checkpoints = self.db_path.with_name("audit.checkpoints")
        else:
            self.checkpoints = None
        self._key = key
        self._lock = threading.Lock()  # one append at a time per instance (no busy waits)
        self._db = open_database(target, branch="audit", pool_size=2)
        try:
            _restore_schema(self._db)
        except BaseException:
            self._db.dispose()
            raise

    def close(self) -> None:
        """Close the database connections."""
        self._db.dispose()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _needs_key(self) -> bytes:
        if self._key is None:
            raise ValueError("this AuditLog was opened without the audit key: it can only read")
        return self._key

    @contextlib.contextmanager
    def _chain(self, *, verifying: bool = False) -> Iterator[sa.Connection]:
        """A transaction that has the chain to itself: no append, in any thread or
        process, runs until it ends. SQLite: the write lock (`BEGIN IMMEDIATE`);
        PostgreSQL: an advisory transaction lock, taken before anything is read."""
        with contextlib.ExitStack() as stack:
            try:
                conn = stack.enter_context(self._db.write())
            except OperationalError:
                if not (verifying and self._db.is_sqlite):
                    raise
                # A read-only copy, or a writer that hangs on: verify what is committed.
                conn = stack.enter_context(self._db.read())
            if self._db.is_postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
            yield conn

    @staticmethod
    def _meta(conn: sa.Connection) -> dict[str, str]:
        rows = conn.execute(sa.select(audit_meta.c.name, audit_meta.c.value))
        return {str(name): str(value) for name, value in rows}

    @staticmethod
    def _head(conn: sa.Connection) -> tuple[int, str]:
        row = conn.execute(
            sa.select(audit.c.seq, audit.c.hash).order_by(audit.c.seq.desc()).limit(1)
        ).first()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def append(
        self,
        kind: str,
        *,
        campaign: str,
        entries: Iterable[tuple[str | None, Mapping[str, object]]],
    ) -> int:
        """Append records of one kind, one per (subject, data); then write a checkpoint.

        All of them land in one transaction: a batch is in the log whole or not at all.
        A log written before the audit key gets its "audit-key" record first (see `seal`).
        Returns the number of records written (not counting that one).
        """
        entries = list(entries)
        self._append(kind, campaign, entries)
        return len(entries)

    def seal(self) -> bool:
        """Key a log written by a reelcast before the audit key, from its current head on:
        append a keyed "audit-key" record that chains onto the old records. True if it
        did; False if the log was keyed already (or is empty: it is keyed as it grows)."""
        with self._db.read() as conn:
            legacy = not self._meta(conn) and self._head(conn)[0] > 0
        return legacy and self._append(None, "-", []) > 0

    def _append(
        self,
        kind: str | None,
        campaign: str,
        entries: list[tuple[str | None, Mapping[str, object]]],
    ) -> int:
        """Chain the batch onto the head and checkpoint it; the number of rows written."""
        key = self._needs_key()
        at = datetime.now(UTC).isoformat()
        batch: list[tuple[str, str, str | None, Mapping[str, object]]] = []
        if kind is not None:
            batch = [(kind, campaign, subject, data) for subject, data in entries]
        rows: list[dict[str, Any]] = []
        filed: tuple[int, str] | None = None  # the old head, once a checkpoint line is written
        try:
            # Under the chain lock: two writers never chain onto the same previous record,
            # and a verify (which takes the same lock) sees the log and its checkpoint
            # together.
            with self._lock, self._chain() as conn:
                head = self._head(conn)
                seq, prev = head
                meta = self._meta(conn)
                if not meta:
                    conn.execute(
                        audit_meta.insert(),
                        [
                            {"name": "keyed_from", "value": str(seq + 1)},
                            {"name": "key_id", "value": key_id(key)},
                        ],
                    )
                    if seq:  # an unkeyed log from an older reelcast: key it from here on
                        seal = {"unkeyed_records": seq, "unkeyed_head": prev}
                        batch.insert(0, (KEYED, "-", None, seal))
                elif meta.get("key_id") != key_id(key):
                    raise ComplianceError(
                        f"{self._db.name}: this audit log was keyed with another audit key "
                        "than the one set now: set REELCAST_AUDIT_KEY back to the key it was "
                        f"written with (or, to start over with the new key, {self._aside()})"
                    )
                for record_kind, record_campaign, subject, data in batch:
                    seq += 1
                    body = _canonical(data)
                    digest = _keyed_digest(
                        key, prev, seq, at, record_kind, record_campaign, subject, body
                    )
                    rows.append(
                        {
                            "seq": seq,
                            "at": at,
                            "kind": record_kind,
                            "campaign": record_campaign,
                            "subject": subject,
                            "data": body,
                            "prev_hash": prev,
                            "hash": digest,
                        }
                    )
                    prev = digest
                if rows:
                    conn.execute(audit.insert(), rows)
                    # In the same transaction (a table) or before COMMIT, under the lock
                    # (a file): a committed batch always has its checkpoint, and a verify
                    # never sees one without the other.
                    if self.checkpoints is None:
                        conn.execute(
                            audit_checkpoints.insert(),
                            {
                                "records": seq,
                                "head": prev,
                                "at": at,
                                "mac": _checkpoint_mac(key, seq, prev, at),
                            },
                        )
                    else:
                        try:
                            self._checkpoint(key, seq, prev, at)
                        except BaseException:  # half a line, perhaps: the old head again
                            with contextlib.suppress(OSError):
                                self._checkpoint(key, head[0], head[1], at, fresh_line=True)
                            raise
                        filed = head
        except BaseException:
            if filed is not None:  # the COMMIT failed: the log's head is the old one again
                with contextlib.suppress(OSError):  # (the error to report is the first)
                    self._checkpoint(key, filed[0], filed[1], at, fresh_line=True)
            raise
        return len(rows)

    def _aside(self) -> str:
        if self.db_path is None:
            return (
                "rename the tables audit, audit_meta and audit_checkpoints and keep them: "
                "reelcast makes new ones"
            )
        return "move audit.sqlite and audit.checkpoints out of the workspace and keep them"

    def record(
        self, kind: str, *, campaign: str, subject: str | None = None, **data: object
    ) -> None:
        """Append one record."""
        self.append(kind, campaign=campaign, entries=[(subject, data)])

    def _checkpoint(
        self, key: bytes, count: int, last_hash: str, at: str, *, fresh_line: bool = False
    ) -> None:
        """Append a checkpoint line (after a newline first with `fresh_line`, in case a
        failed write left half a line)."""
        assert self.checkpoints is not None
        line = json.dumps(
            {
                "count": count,
                "hash": last_hash,
                "at": at,
                "mac": _checkpoint_mac(key, count, last_hash, at),
            }
        )
        with self.checkpoints.open("a", encoding="utf-8") as handle:
            handle.write(("\n" if fresh_line else "") + line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def records(
        self, *, subject: str | None = None, campaign: str | None = None, kind: str | None = None
    ) -> list[Record]:
        """Records in order, optionally of one subject, one campaign and/or one kind."""
        query = sa.select(audit).order_by(audit.c.seq)
        if kind is not None:
            query = query.where(audit.c.kind == kind)
        if subject is not None:
            query = query.where(audit.c.subject == subject)
        if campaign is not None:
            query = query.where(audit.c.campaign == campaign)
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return [Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def verify(self) -> Verification:
        """Walk the chain and the checkpoints; name the first record that does not hold.

        Catches an edited record (its digest, which only the key can recompute), a deleted
        or reordered one (the sequence and the previous-digest links), a cut-off tail or a
        lagging checkpoint (the newest checkpoint must be the head), and a missing or
        forged checkpoint file (or no checkpoint in the table).
        """
        key = self._needs_key()
        # No append half done while we read (an append takes the same lock).
        with self._lock, self._chain(verifying=True) as conn:
            rows = conn.execute(
                sa.select(
                    audit.c.seq,
                    audit.c.at,
                    audit.c.kind,
                    audit.c.campaign,
                    audit.c.subject,
                    audit.c.data,
                    audit.c.prev_hash,
                    audit.c.hash,
                ).order_by(audit.c.seq)
            ).all()
            meta = self._meta(conn)
            newest = self._newest_checkpoint(conn)
        total = len(rows)
        if not meta:
            keyed_from = total + 1  # all of it unkeyed, or empty
        elif meta.get("key_id") != key_id(key):
            return Verification(
                False,
                total,
                None,
                "it was keyed with another audit key than the one set now: set "
                "REELCAST_AUDIT_KEY to the key it was written with",
                "wrong-key",
            )
        else:
            keyed_from = int(meta["keyed_from"]) if meta.get("keyed_from", "").isdigit() else 0
            if not 1 <= keyed_from <= max(total, 1):
                return _tampered(
                    total, None, "its record of where the audit key starts was changed"
                )
        unkeyed = min(keyed_from - 1, total)
        prev = GENESIS
        hashes: dict[int, str] = {0: GENESIS}
        for position, (seq, at, kind, campaign, subject, data, prev_hash, digest) in enumerate(
            rows, start=1
        ):
            if seq != position:
                return _tampered(
                    total,
                    position,
                    f"record {position} is missing "
                    f"or out of order (found record {seq} in its place)",
                )
            if prev_hash != prev:
                return _tampered(
                    total,
                    seq,
                    f"record {seq} does not follow "
                    "the record before it (deleted or reordered records)",
                )
            if seq < keyed_from:
                expected = _plain_digest(prev, seq, at, kind, campaign, subject, data)
            else:
                expected = _keyed_digest(key, prev, seq, at, kind, campaign, subject, data)
            if not hmac.compare_digest(expected, digest):
                return _tampered(total, seq, f"record {seq} was changed after it was written")
            if seq == keyed_from and keyed_from > 1 and kind != KEYED:
                return _tampered(
                    total, seq, f"record {seq} should be the record that keyed the log"
                )
            hashes[seq] = digest
            prev = digest
        if total == 0:
            return Verification(True, 0)
        checked = _checkpoint_problem(newest, hashes, total, key if keyed_from <= total else None)
        if checked is not None:
            first_bad, problem = checked
            return _tampered(total, first_bad, f"{problem} ({self._checkpoints_name()})")
        if keyed_from > total:
            return Verification(
                False,
                total,
                None,
                "it was written by an older reelcast without an audit key: its plain "
                "SHA-256 chain holds, but anyone who can write the workspace could have "
                "rewritten it",
                "unkeyed",
                unkeyed,
            )
        return Verification(True, total, unkeyed_records=unkeyed)

    def _checkpoints_name(self) -> str:
        if self.checkpoints is not None:
            return str(self.checkpoints)
        return f"table audit_checkpoints in {self._db.name}"

    def import_checkpoints(self, path: Path) -> int:
        """Add the checkpoints of a checkpoint file (a SQLite workspace's
        `audit.checkpoints`) to this log's table, in order: the move of a log into a
        database (`reelcast db migrate`). Lines a failed write cut short are skipped, as
        `verify` skips them. Returns how many were added."""
        if self.checkpoints is not None:
            raise ValueError("this audit log keeps its checkpoints in a file already")
        rows = []
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                row = {
                    "records": int(entry["count"]),
                    "head": str(entry["hash"]),
                    "at": str(entry["at"]),
                    "mac": None if entry.get("mac") is None else str(entry["mac"]),
                }
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            rows.append(row)
        if rows:
            with self._db.write() as conn:
                conn.execute(audit_checkpoints.insert(), rows)
        return len(rows)

    def _newest_checkpoint(self, conn: sa.Connection) -> _Checkpoint | str:
        """The newest checkpoint, or what is wrong instead of one."""
        if self.checkpoints is not None:
            return _newest_line(self.checkpoints)
        row = conn.execute(
            sa.select(
                audit_checkpoints.c.records,
                audit_checkpoints.c.head,
                audit_checkpoints.c.at,
                audit_checkpoints.c.mac,
            )
            .order_by(audit_checkpoints.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return "there is no checkpoint"
        return _Checkpoint(int(row[0]), str(row[1]), str(row[2]), row[3])


@dataclass(frozen=True)
class _Checkpoint:
    count: int
    hash: str
    at: str
    mac: str | None


def _newest_line(path: Path) -> _Checkpoint | str:
    if not path.is_file():
        return "the checkpoint file is missing"
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    if not lines:
        return "the checkpoint file is empty"
    try:
        last = json.loads(lines[-1])
        mac = last.get("mac")
        return _Checkpoint(
            int(last["count"]),
            str(last["hash"]),
            str(last["at"]),
            None if mac is None else str(mac),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return "the newest checkpoint is not one reelcast wrote"


def _tampered(records: int, first_bad: int | None, problem: str) -> Verification:
    return Verification(False, records, first_bad, problem, "tampered")


def _checkpoint_problem(
    newest: _Checkpoint | str, hashes: Mapping[int, str], total: int, key: bytes | None
) -> tuple[int, str] | None:
    """(first bad record, what is wrong) with the newest checkpoint, or None if it is the
    head of the log. `key` None: an unkeyed log, whose checkpoints carry no MAC."""
    if isinstance(newest, str):
        return total, newest
    count, digest, at, mac = newest.count, newest.hash, newest.at, newest.mac
    if key is not None and mac is None:
        return total, "the newest checkpoint is not one reelcast wrote"
    if key is not None and not hmac.compare_digest(
        mac or "", _checkpoint_mac(key, count, digest, at)
    ):
        return min(count, total), "the newest checkpoint was not written with the audit key"
    if count > total:
        return (
            total + 1,
            f"the log ends at record {total} but a checkpoint saw {count}: records "
            f"{total + 1}–{count} were removed",
        )
    if count < total:
        return (
            count + 1,
            f"the newest checkpoint is at record {count} but the log goes on to {total}: "
            f"records {count + 1}–{total} were added without a checkpoint, or the "
            "checkpoints were rolled back",
        )
    if not hmac.compare_digest(hashes.get(count, ""), digest):
        return count, f"record {count} differs from the checkpoint taken when it was written"
    return None


def _restore_schema(db: Database) -> None:
    """Put back a dropped `audit_meta` table (as a log from before the audit key has none)
    or a dropped append-only trigger, as reelcast's schema script did at every open.

    The triggers only keep honest code from changing history by accident; `verify` is
    the check. Where they cannot be put back (a read-only copy, a PostgreSQL role
    without the right to make them) the log is used without them.
    """
    guards = _GUARDS + (_PG_GUARDS if db.is_postgres else [])
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        triggers = _triggers(conn, db)
    missing = [g for g in guards if (g[0], g[1]) not in triggers]
    if not missing and {t.name for t in _metadata.sorted_tables} <= tables:
        return
    with contextlib.suppress(DBAPIError), db.write() as conn:
        _metadata.create_all(conn, checkfirst=True)
        if db.is_postgres:
            conn.execute(sa.text(_PG_GUARD_FUNCTION))
        for name, table, event in missing:
            if db.is_postgres:
                each = "STATEMENT" if event == "TRUNCATE" else "ROW"
                ddl = (
                    f"CREATE TRIGGER {name} BEFORE {event} ON {table}"
                    f" FOR EACH {each} EXECUTE FUNCTION audit_append_only()"
                )
            else:
                ddl = (
                    f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {event} ON {table}"
                    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
                )
            conn.execute(sa.text(ddl))


def _triggers(conn: sa.Connection, db: Database) -> set[tuple[str, str]]:
    """(trigger, table) of every trigger on the database's tables."""
    if db.is_postgres:
        query = (
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND pg_table_is_visible(c.oid)"
        )
    else:
        query = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
    return {(str(name), str(table)) for name, table in conn.execute(sa.text(query))}
