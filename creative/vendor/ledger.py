"""The vendor ledger: which storyboard became which paid render, and what it cost.

SQLite in the workspace. A row is written *before* the create request (`submitting`) and
gets the vendor's render id on the first 2xx, so after any ambiguous failure — a timeout,
a 5xx, a crash between request and answer — the client knows it may already have paid
for a render and looks it up instead of creating a second one. Charges are recorded once
per vendor render id, under the campaign that submitted it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from creative.render import CampaignCosts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vendor_renders (
    key          TEXT PRIMARY KEY,   -- storyboard key (a content hash, no personal data)
    render_id    TEXT,               -- the vendor's id; NULL until the first 2xx
    campaign     TEXT,
    status       TEXT NOT NULL,      -- submitting | planned | ... | succeeded | failed
    updated_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vendor_charges (
    render_id    TEXT PRIMARY KEY,
    key          TEXT NOT NULL,
    campaign     TEXT,
    seconds      REAL NOT NULL,
    amount       TEXT NOT NULL,      -- Decimal as text: money is never a float
    charged_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS render_fallbacks (
    key          TEXT NOT NULL,
    campaign     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           REAL NOT NULL,
    PRIMARY KEY (key, campaign)
);
"""


@dataclass(frozen=True)
class LedgerEntry:
    """What we know about one storyboard key at the vendor."""

    key: str
    render_id: str | None
    campaign: str | None
    status: str


class RenderLedger:
    """The key→render-id mapping, the charges and the local fallbacks (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> LedgerEntry | None:
        """The entry for a storyboard key, if it was ever submitted."""
        with self._lock:
            row = self._db.execute(
                "SELECT key, render_id, campaign, status FROM vendor_renders WHERE key = ?",
                (key,),
            ).fetchone()
        return None if row is None else LedgerEntry(*row)

    def intend(self, key: str, campaign: str | None) -> None:
        """Record that a create request for `key` is about to be sent (no id yet)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO vendor_renders (key, render_id, campaign, status, updated_at)"
                " VALUES (?, NULL, ?, 'submitting', ?)"
                " ON CONFLICT(key) DO UPDATE SET render_id = NULL, campaign = excluded.campaign,"
                " status = 'submitting', updated_at = excluded.updated_at",
                (key, campaign, time.time()),
            )

    def adopt(self, key: str, render_id: str, status: str) -> None:
        """Record the vendor's render id for `key` (the first 2xx, or found by lookup)."""
        with self._lock:
            self._db.execute(
                "UPDATE vendor_renders SET render_id = ?, status = ?, updated_at = ? WHERE key = ?",
                (render_id, status, time.time(), key),
            )

    def set_status(self, key: str, status: str) -> None:
        """Record the last status seen for `key`'s render."""
        with self._lock:
            self._db.execute(
                "UPDATE vendor_renders SET status = ?, updated_at = ? WHERE key = ?",
                (status, time.time(), key),
            )

    def charge(
        self, key: str, render_id: str, campaign: str | None, seconds: float, price: Decimal
    ) -> bool:
        """Record the cost of a succeeded render once; False if it was already recorded."""
        amount = (Decimal(str(seconds)) * price).quantize(Decimal("0.0001"))
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO vendor_charges"
                " (render_id, key, campaign, seconds, amount, charged_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (render_id, key, campaign, seconds, str(amount), time.time()),
            )
        return cursor.rowcount == 1

    def record_fallback(self, key: str, campaign: str | None, reason: str) -> None:
        """Record that `key` was rendered locally instead of at the vendor, and why."""
        with self._lock:
            self._db.execute(
                "INSERT INTO render_fallbacks (key, campaign, reason, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(key, campaign) DO UPDATE SET reason = excluded.reason,"
                " at = excluded.at",
                (key, campaign or "", reason, time.time()),
            )

    def clear_fallback(self, key: str, campaign: str | None) -> None:
        """The vendor has now rendered `key` for `campaign`: it is no longer a local fallback."""
        with self._lock:
            self._db.execute(
                "DELETE FROM render_fallbacks WHERE key = ? AND campaign = ?",
                (key, campaign or ""),
            )

    def fallbacks(self, campaign: str | None) -> dict[str, str]:
        """Storyboard key → reason, for every video of `campaign` rendered locally instead."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, reason FROM render_fallbacks WHERE campaign = ? ORDER BY at",
                (campaign or "",),
            ).fetchall()
        return dict(rows)

    def costs(self, campaign: str) -> CampaignCosts:
        """Renders paid, render seconds and amount charged for `campaign`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seconds, amount FROM vendor_charges WHERE campaign = ?", (campaign,)
            ).fetchall()
            (fallbacks,) = self._db.execute(
                "SELECT COUNT(*) FROM render_fallbacks WHERE campaign = ?", (campaign,)
            ).fetchone()
        return CampaignCosts(
            campaign=campaign,
            renders=len(rows),
            seconds=round(sum(seconds for seconds, _ in rows), 3),
            amount=sum((Decimal(amount) for _, amount in rows), Decimal("0")),
            local_fallbacks=fallbacks,
        )

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()
