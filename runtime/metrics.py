"""Run metrics: counters and latency quantiles per stage, in Prometheus text format.

Stages record into the workspace (`metrics.sqlite`), or into the PostgreSQL database
named by URL, so `reelcast metrics` shows P50/P95/P99 over recent runs, and a Prometheus
node-exporter textfile collector (or a human) can read it. Any number of workers and
dispatchers, in any number of processes, write the same store: an observation is one
row, and a counter is added to in the database (`INSERT … ON CONFLICT DO UPDATE SET
value = value + …`), never read, added to and written back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from delivery.policy import message_from_bytes
from delivery.transport import Transport, send_stored
from storage import Target, is_url
from storage.database import open_database

QUANTILES = (0.5, 0.95, 0.99)
#: Quantiles are computed over at most this many recent observations per stage.
WINDOW = 10_000

_metadata = sa.MetaData()
latency = sa.Table(
    "latency",
    _metadata,
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("at", sa.Text, nullable=False),  # ISO 8601 UTC: sorts as it happened
    sa.Index("latency_stage", "stage", "at"),
)
counter = sa.Table(
    "counter",
    _metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)


class Metrics:
    """Latency observations and counters of one workspace (safe to share between threads;
    many processes may write the same store)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        #: the SQLite file, or None when the metrics are in a database named by URL
        self.db_path = None if is_url(target) else Path(target)
        # Observations are statistics, not state: a power cut may lose the last few, an
        # application crash none (WAL). FULL cost a disk sync (~3 ms) per email sent.
        self._db = open_database(
            target, branch="metrics", sqlite_pragmas={"synchronous": "NORMAL"}, pool_size=4
        )
        if self._db.is_postgres:  # the same trade on PostgreSQL: commit without waiting
            sa.event.listen(self._db.engine, "connect", _commit_without_flush)
            self._db.engine.dispose()  # (the connections made before it)
        # Built once: a send is timed per email, and building a statement costs more
        # than running it.
        self._observe = latency.insert()
        insert = self._db.insert(counter)
        self._incr = insert.on_conflict_do_update(
            index_elements=[counter.c.name],
            set_={"value": counter.c.value + insert.excluded.value},
        )

    def close(self) -> None:
        """Close the database."""
        self._db.dispose()

    def __enter__(self) -> Metrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def observe(self, stage: str, seconds: float) -> None:
        """Record one latency of `stage` (e.g. render, send, recommend, vendor)."""
        row = {"stage": stage, "seconds": float(seconds), "at": datetime.now(UTC).isoformat()}
        with self._db.write() as conn:
            conn.execute(self._observe, row)

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
        with self._db.write() as conn:
            conn.execute(self._incr, {"name": name, "value": float(amount)})

    def quantiles(self, stage: str) -> dict[float, float]:
        """P50/P95/P99 of the stage's recent observations ({} when there are none)."""
        query = (
            sa.select(latency.c.seconds)
            .where(latency.c.stage == stage)
            .order_by(latency.c.at.desc())
            .limit(WINDOW)
        )
        with self._db.read() as conn:
            seconds = list(conn.execute(query).scalars())
        if not seconds:
            return {}
        values = np.array(seconds, dtype=float)
        return {q: float(np.quantile(values, q)) for q in QUANTILES}

    def prometheus_text(self) -> str:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        per_stage = (
            sa.select(latency.c.stage, sa.func.count(), sa.func.sum(latency.c.seconds))
            .group_by(latency.c.stage)
            .order_by(latency.c.stage)
        )
        with self._db.read() as conn:
            stages = conn.execute(per_stage).all()
            counters = conn.execute(
                sa.select(counter.c.name, counter.c.value).order_by(counter.c.name)
            ).all()
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
            lines.append(f'reelcast_stage_seconds_sum{{stage="{stage}"}} {float(total):.6f}')
        for name, value in counters:
            metric = f"reelcast_{name}"
            lines += [f"# TYPE {metric} counter", f"{metric} {value:g}"]
        return "\n".join(lines) + "\n"


def _commit_without_flush(dbapi_connection: Any, _record: Any) -> None:
    """PostgreSQL: a commit returns before its WAL reaches the disk (a server crash may
    lose the last observations, never corrupt them; like SQLite's synchronous=NORMAL)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    dbapi_connection.commit()


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
