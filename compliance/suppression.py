"""The suppression list: customers who must never be mailed again (unsubscribes, bounces)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppression (
    customer_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    added_at TEXT NOT NULL
)
"""


class SuppressionList:
    """A SQLite-backed set of suppressed customer ids, shared by every campaign."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def add(self, customer_ids: Iterable[str], *, reason: str, source: str) -> int:
        """Suppress customers; returns how many were new. The first reason recorded stays."""
        now = datetime.now(UTC).isoformat()
        rows = [(cid, reason, source, now) for cid in customer_ids]
        with self._connect() as db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO suppression VALUES (?, ?, ?, ?)", rows)
            return db.total_changes - before

    def __contains__(self, customer_id: object) -> bool:
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM suppression WHERE customer_id = ?", (customer_id,)
            ).fetchone()
        return row is not None

    def ids(self) -> set[str]:
        """Every suppressed customer id."""
        with self._connect() as db:
            return {r[0] for r in db.execute("SELECT customer_id FROM suppression")}
