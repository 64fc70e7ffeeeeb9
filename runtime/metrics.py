"""Run metrics: counters and latency quantiles per stage, in Prometheus text format.

Stages record into the workspace (SQLite), so `reelcast metrics` shows P50/P95/P99 over
recent runs, and a Prometheus node-exporter textfile collector (or a human) can read it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import numpy as np

from delivery.policy import message_from_bytes
from delivery.transport import Transport, send_stored

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latency (stage TEXT NOT NULL, seconds REAL NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS latency_stage ON latency (stage, at);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""
QUANTILES = (0.5, 0.95, 0.99)
#: Quantiles are computed over at most this many recent observations per stage.
WINDOW = 10_000


class Metrics:
    """Latency observations and counters of one workspace."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.db_path, timeout=30, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # Observations are statistics, not state: a power cut may lose the last few, an
        # application crash none (WAL). FULL cost a disk sync (~3 ms) per email sent.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Metrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def observe(self, stage: str, seconds: float) -> None:
        """Record one latency of `stage` (e.g. render, send, recommend, vendor)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO latency VALUES (?, ?, ?)",
                (stage, float(seconds), datetime.now(UTC).isoformat()),
            )

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time the block as one observation of `stage` (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(stage, time.perf_counter() - started)

    def incr(self, name: str, amount: float = 1.0) -> None:
        """Add to a counter (e.g. emails_sent_total)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO counter VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                "value = value + excluded.value",
                (name, float(amount)),
            )

    def quantiles(self, stage: str) -> dict[float, float]:
        """P50/P95/P99 of the stage's recent observations ({} when there are none)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seconds FROM latency WHERE stage = ? ORDER BY rowid DESC LIMIT ?",
                (stage, WINDOW),
            ).fetchall()
        if not rows:
            return {}
        values = np.array([r[0] for r in rows])
        return {q: float(np.quantile(values, q)) for q in QUANTILES}

    def prometheus_text(self) -> str:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            stages = self._db.execute(
                "SELECT stage, COUNT(*), SUM(seconds) FROM latency GROUP BY stage ORDER BY stage"
            ).fetchall()
            counters = self._db.execute("SELECT name, value FROM counter ORDER BY name").fetchall()
        lines = [
            "# HELP reelcast_stage_seconds Latency of one unit of work per stage.",
            "# TYPE reelcast_stage_seconds summary",
        ]
        for stage, count, total in stages:
            for q, value in self.quantiles(stage).items():
                lines.append(
                    f'reelcast_stage_seconds{{stage="{stage}",quantile="{q}"}} {value:.6f}'
                )
            lines.append(f'reelcast_stage_seconds_count{{stage="{stage}"}} {count}')
            lines.append(f'reelcast_stage_seconds_sum{{stage="{stage}"}} {total:.6f}')
        for name, value in counters:
            metric = f"reelcast_{name}"
            lines += [f"# TYPE {metric} counter", f"{metric} {value:g}"]
        return "\n".join(lines) + "\n"


class TimedTransport:
    """Wraps an email transport: every send is a `send` latency observation."""

    def __init__(self, inner: Transport, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def send(self, msg: EmailMessage, recipient: str) -> str:
        """Send through the wrapped transport, timing it."""
        with self._metrics.timed("send"):
            return self._inner.send(msg, recipient)

    def send_bytes(self, data: bytes, recipient: str) -> str:
        """Send stored message bytes through the wrapped transport, timing only the send:
        as they are if it takes bytes, else parsed first (outside the timer, as before)."""
        if callable(getattr(self._inner, "send_bytes", None)):
            with self._metrics.timed("send"):
                return send_stored(self._inner, data, recipient)
        msg = message_from_bytes(data)
        with self._metrics.timed("send"):
            return self._inner.send(msg, recipient)
