"""A tamper-evident audit log: append-only, hash-chained records of every decision.

Each record's hash covers its content and the previous record's hash, so editing,
deleting or reordering any record breaks the chain from that record on. SQLite
triggers refuse UPDATE and DELETE, so honest code cannot change history by accident.
Someone with the file can drop the triggers and cut off the tail, which the chain
alone would not show: checkpoints (record count and last hash) appended to a separate
file after every batch catch that truncation.

Records name customers by pseudonymous id only, so erasing a customer's personal data
elsewhere (`reelcast forget`) leaves the chain valid and still explains the decisions.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

GENESIS = "0" * 64

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
"""


class _Checkpoint(TypedDict):
    """One line of the checkpoints file (JSON)."""

    count: int
    hash: str
    at: str


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
    """The outcome of checking the chain; `first_bad` is the first record that fails."""

    ok: bool
    records: int
    first_bad: int | None = None
    problem: str = ""


def _canonical(data: Mapping[str, object]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(
    prev: str, seq: int, at: str, kind: str, campaign: str, subject: str | None, data: str
) -> str:
    fields = [prev, str(seq), at, kind, campaign, subject or "", data]
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


class AuditLog:
    """The audit log of one workspace: a SQLite table and a checkpoint file beside it."""

    def __init__(self, db_path: Path, checkpoints: Path | None = None) -> None:
        self.db_path = Path(db_path)
        self.checkpoints = checkpoints or self.db_path.with_name("audit.checkpoints")
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(
        self,
        kind: str,
        *,
        campaign: str,
        entries: Iterable[tuple[str | None, Mapping[str, object]]],
    ) -> int:
        """Append records of one kind, one per (subject, data); then write a checkpoint.

        All of them land in one transaction: a batch is in the log whole or not at all.
        Returns the number of records written.
        """
        at = datetime.now(UTC).isoformat()
        with self._lock:
            # BEGIN IMMEDIATE: two writers never chain onto the same previous record.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (row[0], row[1]) if row else (0, GENESIS)
                written = 0
                for subject, data in entries:
                    seq += 1
                    body = _canonical(data)
                    digest = _digest(prev, seq, at, kind, campaign, subject, body)
                    self._db.execute(
                        "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (seq, at, kind, campaign, subject, body, prev, digest),
                    )
                    prev = digest
                    written += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if written:
                self._checkpoint(seq, prev, at)
        return written

    def record(
        self, kind: str, *, campaign: str, subject: str | None = None, **data: object
    ) -> None:
        """Append one record."""
        self.append(kind, campaign=campaign, entries=[(subject, data)])

    def _checkpoint(self, count: int, last_hash: str, at: str) -> None:
        line = json.dumps({"count": count, "hash": last_hash, "at": at})
        with self.checkpoints.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def records(self, *, subject: str | None = None, campaign: str | None = None) -> list[Record]:
        """Records in order, optionally of one subject and/or one campaign."""
        sql = "SELECT * FROM audit WHERE (?1 IS NULL OR subject = ?1)"
        sql += " AND (?2 IS NULL OR campaign = ?2) ORDER BY seq"
        with self._lock:
            rows = self._db.execute(sql, (subject, campaign)).fetchall()
        return [Record(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def verify(self) -> Verification:
        """Walk the chain and the checkpoints; name the first record that does not hold.

        Catches an edited record (its hash), a deleted or reordered one (the sequence
        and the previous-hash links), and a cut-off tail (the newest checkpoint).
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, at, kind, campaign, subject, data, prev_hash, hash"
                " FROM audit ORDER BY rowid"
            ).fetchall()
        prev = GENESIS
        hashes: dict[int, str] = {}
        for position, (seq, at, kind, campaign, subject, data, prev_hash, digest) in enumerate(
            rows, start=1
        ):
            if seq != position:
                return Verification(
                    False,
                    len(rows),
                    position,
                    f"record {position} is missing "
                    f"or out of order (found record {seq} in its place)",
                )
            if prev_hash != prev:
                return Verification(
                    False,
                    len(rows),
                    seq,
                    f"record {seq} does not follow "
                    "the record before it (deleted or reordered records)",
                )
            if _digest(prev, seq, at, kind, campaign, subject, data) != digest:
                return Verification(
                    False, len(rows), seq, f"record {seq} was changed after it was written"
                )
            hashes[seq] = digest
            prev = digest
        checkpoint = self._last_checkpoint()
        if checkpoint is not None:
            count, expected = int(checkpoint["count"]), str(checkpoint["hash"])
            if len(rows) < count:
                return Verification(
                    False,
                    len(rows),
                    len(rows) + 1,
                    f"the log ends at record "
                    f"{len(rows)} but a checkpoint saw {count}: records "
                    f"{len(rows) + 1}–{count} were removed",
                )
            if hashes.get(count) != expected:
                return Verification(
                    False,
                    len(rows),
                    count,
                    f"record {count} differs from the checkpoint taken when it was written",
                )
        return Verification(True, len(rows))

    def _last_checkpoint(self) -> _Checkpoint | None:
        if not self.checkpoints.is_file():
            return None
        last: _Checkpoint | None = None
        for line in self.checkpoints.read_text(encoding="utf-8").splitlines():
            if line.strip():
                last = json.loads(line)
        return last
