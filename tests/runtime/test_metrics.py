"""Run metrics come out in Prometheus text format with quantiles per stage, on SQLite and
on PostgreSQL, written by many threads and processes at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from runtime.metrics import Metrics
from storage import Target
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def target(database: Callable[[str], Target]) -> Target:
    return database("metrics")


def test_quantiles_counts_and_counters_in_prometheus_format(target: Target) -> None:
    with Metrics(target) as metrics:
        for i in range(1, 101):
            metrics.observe("render", i / 100)
        metrics.incr("emails_sent_total", 3)
        metrics.incr("emails_sent_total", 2)
        text = metrics.prometheus_text()
        q = metrics.quantiles("render")
    assert abs(q[0.5] - 0.505) < 1e-9 and abs(q[0.99] - 0.9901) < 1e-9
    assert 'reelcast_stage_seconds{stage="render",quantile="0.95"} 0.950500' in text
    assert 'reelcast_stage_seconds_count{stage="render"} 100' in text
    assert 'reelcast_stage_seconds_sum{stage="render"} 50.500000' in text
    assert "# TYPE reelcast_emails_sent_total counter\nreelcast_emails_sent_total 5" in text


def test_timed_block_is_observed_even_when_it_raises(target: Target) -> None:
    with Metrics(target) as metrics:
        try:
            with metrics.timed("send"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert metrics.quantiles("send")
        assert metrics.quantiles("render") == {}


def test_quantiles_are_over_the_most_recent_observations(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runtime.metrics.WINDOW", 10)
    with Metrics(target) as metrics:
        for _ in range(20):
            metrics.observe("send", 5.0)  # old and slow
        for _ in range(10):
            metrics.observe("send", 1.0)  # the window
        assert metrics.quantiles("send") == {0.5: 1.0, 0.95: 1.0, 0.99: 1.0}


def test_threads_sharing_one_store_lose_nothing(target: Target) -> None:
    with Metrics(target) as metrics:

        def work() -> None:
            for _ in range(50):
                metrics.observe("send", 0.01)
                metrics.incr("emails_sent_total")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        text = metrics.prometheus_text()
    assert 'reelcast_stage_seconds_count{stage="send"} 200' in text
    assert "reelcast_emails_sent_total 200\n" in text


_WORKER = """
import sys, time
from pathlib import Path
from runtime.metrics import Metrics

target, go = sys.argv[1], Path(sys.argv[2])
with Metrics(target if "://" in target else Path(target)) as metrics:
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    for _ in range(40):
        metrics.incr("emails_sent_total", 0.5)
        metrics.observe("send", 0.25)
"""


def test_processes_writing_one_store_at_once_lose_no_count(target: Target, tmp_path: Path) -> None:
    Metrics(target).close()  # the schema made once, not raced for by the workers
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(target), str(go)],
            cwd=REPO,
            env=os.environ | {"PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    with Metrics(target) as metrics:
        text = metrics.prometheus_text()
    assert "reelcast_emails_sent_total 80\n" in text
    assert 'reelcast_stage_seconds_count{stage="send"} 160' in text


def test_postgresql_commits_observations_without_waiting_for_the_disk(
    postgres: PostgresServer,
) -> None:
    with Metrics(postgres.create_database()) as metrics, metrics._db.read() as conn:
        assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"


def test_metrics_from_before_schema_versions_are_adopted(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sqlite"
    old = sqlite3.connect(path)  # exactly what the earlier code made
    old.executescript(
        """
        CREATE TABLE IF NOT EXISTS latency (stage TEXT NOT NULL, seconds REAL NOT NULL,
                                            at TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS latency_stage ON latency (stage, at);
        CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value REAL NOT NULL);
        INSERT INTO latency VALUES ('render', 2.0, '2026-11-01T00:00:00+00:00');
        INSERT INTO counter VALUES ('emails_sent_total', 7);
        """
    )
    old.close()
    with Metrics(path) as metrics:
        metrics.incr("emails_sent_total")
        metrics.observe("render", 4.0)
        assert metrics.quantiles("render")[0.5] == 3.0
        assert "reelcast_emails_sent_total 8\n" in metrics.prometheus_text()
    check = sqlite3.connect(path)
    assert [r[0] for r in check.execute("SELECT version_num FROM alembic_version")] == [
        "metrics_0001"
    ]
    check.close()
