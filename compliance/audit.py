"""A tamper-evident audit log: append-only, keyed hash-chained records of every decision.

Each record's digest is an HMAC-SHA256, under the audit key, of its content and the
previous record's digest, so editing, deleting or reordering any record breaks the chain
from that record on, and nobody without the key can compute a new chain over an edited
record. The key is given by the caller and lives neither in the database nor beside it.
SQLite triggers refuse UPDATE and DELETE, so honest code cannot change history by
accident. Someone with the file can drop the triggers and cut off the tail, which the
chain alone would not show: a checkpoint (record count and last digest, itself keyed) is
appended to a separate file with every batch, and `verify` wants the newest one to match
the log's head exactly. A missing checkpoint file, or one behind or ahead of the head,
fails. (Cutting the log *and* its checkpoint file back to an earlier checkpoint together
is only caught by a copy of the checkpoints kept where the workspace's writers cannot
write.)

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
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from compliance.errors import ComplianceError

GENESIS = "0" * 64

#: the record that keys a log written before the audit key (see `AuditLog.seal`)
KEYED = "audit-key"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    campaign TEXT NOT NULL,
    subject TEXT,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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
    """The audit log of one workspace: a SQLite table and a checkpoint file beside it.

    `key` is the audit key (HMAC-SHA256): appending and verifying need it; reading
    records does not. It must not be stored in the database or the checkpoint file.
    """

    def __init__(
        self, db_path: Path, *, key: bytes | None = None, checkpoints: Path | None = None
    ) -> None:
        if key is not None and len(key) < 16:
            raise ValueError("the audit key must be at least 16 bytes")
        self.db_path = Path(db_path)
        self.checkpoints = checkpoints or self.db_path.with_name("audit.checkpoints")
        self._key = key
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.db_path, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _needs_key(self) -> bytes:
        if self._key is None:
            raise ValueError("this AuditLog was opened without the audit key: it can only read")
        return self._key

    def _meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT name, value FROM audit_meta").fetchall())

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
        return self._append(kind, campaign, list(entries))

    def seal(self) -> bool:
        """Key a log written by a reelcast before the audit key, from its current head on:
        append a keyed "audit-key" record that chains onto the old records. True if it
        did; False if the log was keyed already (or is empty: it is keyed as it grows)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                legacy = not self._meta() and self._head()[0] > 0
            finally:
                self._db.execute("ROLLBACK")
        if legacy:
            self._append(None, "-", [])
        return legacy

    def _head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def _append(
        self,
        kind: str | None,
        campaign: str,
        entries: list[tuple[str | None, Mapping[str, object]]],
    ) -> int:
        key = self._needs_key()
        at = datetime.now(UTC).isoformat()
        batch: list[tuple[str, str, str | None, Mapping[str, object]]] = []
        if kind is not None:
            batch = [(kind, campaign, subject, data) for subject, data in entries]
        with self._lock:
            # BEGIN IMMEDIATE: two writers never chain onto the same previous record, and a
            # verify (which takes the same lock) sees the log and its checkpoint together.
            self._db.execute("BEGIN IMMEDIATE")
            checkpointed = False
            try:
                head = self._head()
                seq, prev = head
                meta = self._meta()
                if not meta:
                    self._db.executemany(
                        "INSERT INTO audit_meta VALUES (?, ?)",
                        [("keyed_from", str(seq + 1)), ("key_id", key_id(key))],
                    )
                    if seq:  # an unkeyed log from an older reelcast: key it from here on
                        seal = {"unkeyed_records": seq, "unkeyed_head": prev}
                        batch.insert(0, (KEYED, "-", None, seal))
                elif meta.get("key_id") != key_id(key):
                    raise ComplianceError(
                        f"{self.db_path}: this audit log was keyed with another audit key "
                        "than the one set now: set REELCAST_AUDIT_KEY back to the key it was "
                        "written with (or, to start over with the new key, move audit.sqlite "
                        "and audit.checkpoints out of the workspace and keep them)"
                    )
                for record_kind, record_campaign, subject, data in batch:
                    seq += 1
                    body = _canonical(data)
                    digest = _keyed_digest(
                        key, prev, seq, at, record_kind, record_campaign, subject, body
                    )
                    self._db.execute(
                        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, at, record_kind, record_campaign, subject, body, prev, digest),
                    )
                    prev = digest
                if batch:
                    # Before COMMIT, under the write lock: a committed batch always has its
                    # checkpoint, and a verify never sees one without the other.
                    checkpointed = True
                    self._checkpoint(key, seq, prev, at)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                if checkpointed:  # the log's head is the old one again: so is the checkpoint
                    with contextlib.suppress(OSError):  # (the error to report is the first)
                        self._checkpoint(key, head[0], head[1], at, fresh_line=True)
                raise
        return len(entries) if kind is not None else 0

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

    def records(self, *, subject: str | None = None, campaign: str | None = None) -> list[Record]:
        """Records in order, optionally of one subject and/or one campaign."""
        sql = "SELECT * FROM audit WHERE (?1 IS NULL OR subject = ?1)"
        sql += " AND (?2 IS NULL OR campaign = ?2) ORDER BY seq"
        with self._lock:
            rows = self._db.execute(sql, (subject, campaign)).fetchall()
        return [Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def verify(self) -> Verification:
        """Walk the chain and the checkpoints; name the first record that does not hold.

        Catches an edited record (its digest, which only the key can recompute), a deleted
        or reordered one (the sequence and the previous-digest links), a cut-off tail or a
        lagging checkpoint (the newest checkpoint must be the head), and a missing or
        forged checkpoint file.
        """
        key = self._needs_key()
        with self._lock:
            try:  # no append half done while we read (an append takes this lock)
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # a read-only copy, or a writer that hangs on
                self._db.execute("BEGIN")
            try:
                rows = self._db.execute(
                    "SELECT seq, at, kind, campaign, subject, data, prev_hash, hash"
                    " FROM audit ORDER BY rowid"
                ).fetchall()
                meta = self._meta()
                lines = self._checkpoint_lines()
            finally:
                self._db.execute("ROLLBACK")
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
        checked = _checkpoint_problem(lines, hashes, total, key if keyed_from <= total else None)
        if checked is not None:
            first_bad, problem = checked
            return _tampered(total, first_bad, f"{problem} ({self.checkpoints})")
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

    def _checkpoint_lines(self) -> list[str] | None:
        if not self.checkpoints.is_file():
            return None
        return [x for x in self.checkpoints.read_text(encoding="utf-8").splitlines() if x.strip()]


def _tampered(records: int, first_bad: int | None, problem: str) -> Verification:
    return Verification(False, records, first_bad, problem, "tampered")


def _checkpoint_problem(
    lines: list[str] | None, hashes: Mapping[int, str], total: int, key: bytes | None
) -> tuple[int, str] | None:
    """(first bad record, what is wrong) with the newest checkpoint, or None if it is the
    head of the log. `key` None: an unkeyed log, whose checkpoints carry no MAC."""
    if lines is None:
        return total, "the checkpoint file is missing"
    if not lines:
        return total, "the checkpoint file is empty"
    try:
        last = json.loads(lines[-1])
        count, digest, at = int(last["count"]), str(last["hash"]), str(last["at"])
        mac = str(last["mac"]) if key is not None else ""
    except (ValueError, KeyError, TypeError):
        return total, "the newest checkpoint is not one reelcast wrote"
    if key is not None and not hmac.compare_digest(mac, _checkpoint_mac(key, count, digest, at)):
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
            "checkpoint file was rolled back",
        )
    if not hmac.compare_digest(hashes.get(count, ""), digest):
        return count, f"record {count} differs from the checkpoint taken when it was written"
    return None
