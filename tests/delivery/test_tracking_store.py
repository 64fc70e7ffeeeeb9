"""Tracking events in their own database: the workspace wiring, the one-time move from
state.sqlite, erasure, and the rules that tell people from machines (issue 12)."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import typer
from delivery_support import CAMPAIGN, NOW, SECRET
from starlette.applications import Starlette
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from delivery.events_store import (
    TrackingEvents,
    feedback_events,
    tracking_db_beside,
    tracking_events,
)
from delivery.links import make_token
from delivery.outbox import Outbox
from delivery.traffic import RateLimit, RateLimiter, TrafficPolicy, machine_reason
from retail.types import EventType
from runtime.workspace import Workspace
from storage import Target
from storage.database import open_database
from tests.postgres import PostgresServer

CUSTOMER = "cust-00042"
PRODUCT_URL = "https://shop.example.com/p/trail-runner"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


# ------------------------------------------------------------ the workspace's tracking db


Served = Callable[[Any, dict[str, Any]], None]


def _serve(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sent_at: datetime,
    while_up: Served,
    *args: str,
) -> Path:
    """`reelcast track serve [args]` on a workspace with one sent email; uvicorn.run is
    replaced by `while_up(app, uvicorn options)`. Returns the workspace."""
    import uvicorn

    from cli.tracking import serve

    ws = tmp_path / "ws"
    ws.mkdir()
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "id,title,brand,category,price,currency,image,url\n"
        f"sku-1,Trail Runner,Acme,shoes,99.00,EUR,img/1.jpg,{PRODUCT_URL}\n"
    )
    # A sent email, as dispatch leaves it: its delivery time is read from the outbox.
    with Outbox(ws / "state.sqlite") as outbox:
        outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=CUSTOMER,
            recipient="ann@mail.example",
            message=b"Subject: hi\r\n\r\nbody\r\n",
            due_at=sent_at,
            now=sent_at,
        )
        (item,) = outbox.claim_due(sent_at, limit=1)
        assert outbox.begin_send(item, now=sent_at)
        outbox.mark_sent(item.id, "provider-1", now=sent_at)
    monkeypatch.setenv("REELCAST_PSEUDONYM_SECRET", SECRET.decode())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: while_up(app, options))
    cli = typer.Typer()
    cli.command()(serve)
    result = CliRunner().invoke(cli, ["--workspace", str(ws), "--catalog", str(catalog), *args])
    assert result.exit_code == 0, result.output
    if result.exception is not None:
        raise result.exception
    return ws


def test_serve_bounds_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    _serve(tmp_path, monkeypatch, NOW, lambda app, options: seen.update(options))
    assert seen["limit_concurrency"] == 200
    assert seen["timeout_keep_alive"] == 5
    assert seen["h11_max_incomplete_event_size"] == 16 * 1024
    assert seen["access_log"] is False


def test_serve_with_workers_makes_the_app_in_each_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import tracking

    monkeypatch.delenv(tracking._WORKER_OPTIONS, raising=False)  # restored afterwards
    token = make_token(SECRET, CAMPAIGN, CUSTOMER)
    seen: dict[str, Any] = {}

    def while_up(app: Any, options: dict[str, Any]) -> None:
        seen.update(options, app=app)
        worker = tracking.worker_app()  # what uvicorn calls in each worker process
        with TestClient(worker, follow_redirects=False) as client:
            headers = {"User-Agent": BROWSER}
            for _ in range(2):
                hop = client.get(f"/c/{token}", params={"u": PRODUCT_URL}, headers=headers)
                assert hop.status_code == 302

    sent = datetime.now(UTC) - timedelta(days=1)
    ws = _serve(tmp_path, monkeypatch, sent, while_up, "--workers", "3", "--per-token", "7")
    assert seen["app"] == "cli.tracking:worker_app" and seen["factory"] is True
    assert seen["workers"] == 3 and seen["limit_concurrency"] == 200
    assert seen["access_log"] is False
    with TrackingEvents(ws / "tracking.sqlite") as store:
        assert store.counts()["click"] == 1


@pytest.mark.slow
def test_serve_with_two_worker_processes_stores_each_click_once(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "id,title,brand,category,price,currency,image,url\n"
        f"sku-1,Trail Runner,Acme,shoes,99.00,EUR,img/1.jpg,{PRODUCT_URL}\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    env.update(REELCAST_PSEUDONYM_SECRET=SECRET.decode(), PYTHONPATH=os.pathsep.join(sys.path))
    ws = tmp_path / "ws"
    command = [sys.executable, "-m", "cli.main", "track", "serve", "--port", str(port)]
    command += ["--workspace", str(ws), "--catalog", str(catalog), "--workers", "2"]
    server = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    tokens = [make_token(SECRET, CAMPAIGN, f"cust-{n:05d}") for n in range(10)]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("the tracking app did not start") from None
                time.sleep(0.2)
        headers = {"User-Agent": BROWSER}

        def click(token: str) -> int:
            with httpx.Client(base_url=base, headers=headers) as client:
                return client.get(f"/c/{token}", params={"u": PRODUCT_URL}).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:  # every link clicked 4 times at once
            statuses = list(pool.map(click, tokens * 4))
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0].decode()
    assert statuses == [302] * 40, log
    assert "2 processes" in log
    with TrackingEvents(ws / "tracking.sqlite") as store:
        assert store.counts()["click"] == 10
        assert set(_repeats(store).values()) == {3}  # 4 clicks of each link: 1 event


def test_a_dispatch_holding_the_state_database_does_not_block_a_click(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token(SECRET, CAMPAIGN, CUSTOMER)
    answers: list[int] = []

    def while_up(app: Starlette, options: dict[str, Any]) -> None:
        dispatch = sqlite3.connect(tmp_path / "ws" / "state.sqlite", isolation_level=None)
        dispatch.execute("BEGIN IMMEDIATE")  # a dispatch pass, mid-write
        dispatch.execute("UPDATE outbox SET attempts = attempts + 1")
        with TestClient(app, follow_redirects=False) as client:

            def click() -> None:
                headers = {"User-Agent": BROWSER}
                hop = client.get(f"/c/{token}", params={"u": PRODUCT_URL}, headers=headers)
                answers.append(hop.status_code)

            worker = threading.Thread(target=click)
            try:
                started = time.monotonic()
                worker.start()
                worker.join(timeout=1.0)
                took = time.monotonic() - started
            finally:
                dispatch.execute("ROLLBACK")
                dispatch.close()
                worker.join(timeout=60)
        assert took < 1.0, f"the click waited {took:.1f} s for the dispatch's transaction"
        assert answers == [302]

    sent = datetime.now(UTC) - timedelta(days=1)
    ws = _serve(tmp_path, monkeypatch, sent, while_up)
    with TrackingEvents(ws / "tracking.sqlite") as store:
        clicks = [e for e in store.events() if e.type is EventType.click]
    assert [(e.customer_id, e.product_id) for e in clicks] == [(CUSTOMER, "sku-1")]


def test_a_click_right_after_the_outbox_says_sent_is_machine_traffic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flow records the exposure only after the pass: the outbox's sent_at is used.
    token = make_token(SECRET, CAMPAIGN, CUSTOMER)

    def while_up(app: Starlette, options: dict[str, Any]) -> None:
        with TestClient(app, follow_redirects=False) as client:
            headers = {"User-Agent": BROWSER}
            assert client.get(f"/c/{token}", params={"u": PRODUCT_URL}, headers=headers)

    ws = _serve(tmp_path, monkeypatch, datetime.now(UTC), while_up)
    with TrackingEvents.beside(ws / "state.sqlite") as store:
        assert [e.type for e in store.events()] == []
        assert store.machine_hits() == {"soon": 1}


def test_workspace_names_the_tracking_db_beside_the_state(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert ws.tracking_db == tracking_db_beside(ws.state_db) == tmp_path / "tracking.sqlite"
    with TrackingEvents.beside(ws.state_db) as store:
        assert store.db_path == ws.tracking_db
        store.record("c", "a", EventType.open, at=NOW)
        with sqlite3.connect(ws.tracking_db) as db:  # WAL: a reader never waits for a click
            assert db.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
        db.close()


# ---------------------------------------------------------------- the one-time move


def _old_state(path: Path) -> None:
    """A state.sqlite as reelcast left it before tracking.sqlite existed."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")  # as Outbox and SuppressionList open it
    db.executescript(
        """
        CREATE TABLE tracking_events (
            id INTEGER PRIMARY KEY, campaign_id TEXT NOT NULL, customer_id TEXT NOT NULL,
            type TEXT NOT NULL, product_id TEXT, variant TEXT, at TEXT NOT NULL);
        CREATE TABLE outbox_stand_in (x);
        INSERT INTO tracking_events (campaign_id, customer_id, type, product_id, variant, at)
        VALUES ('c', 'a', 'exposure', NULL, 'v1', '2026-05-01T10:00:00.000000Z'),
               ('c', 'a', 'click', 'sku-1', NULL, '2026-05-01T11:00:00.000000Z'),
               ('c', 'b', 'open', NULL, NULL, '2026-05-01T12:00:00.000000Z');
        """
    )
    db.commit()
    db.close()


def test_events_in_an_old_state_database_are_moved_once(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    _old_state(state)
    assert [e.customer_id for e in feedback_events(state, ["a", "b"])] == ["a", "a", "b"]
    with sqlite3.connect(state) as db:  # the old copy is gone from the state
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "tracking_events" not in tables and "outbox_stand_in" in tables
    with TrackingEvents.beside(state) as again:
        assert again.counts() == {"click": 1, "exposure": 1, "open": 1, "unsubscribe": 0}


def test_old_events_are_not_moved_into_a_database_url_but_erasure_reaches_them(
    postgres: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database URL may hold many workspaces' events: one "moved" marker cannot tell
    # them apart, so an old state.sqlite keeps its rows (with a warning) until dropped.
    state = tmp_path / "state.sqlite"
    _old_state(state)
    url = postgres.create_database()
    with caplog.at_level(logging.WARNING, "reelcast.tracking"):
        store = TrackingEvents(url, legacy_db=state)
    with store:
        assert store.db_path is None
        assert store.counts() == {"click": 0, "exposure": 0, "open": 0, "unsubscribe": 0}
        assert any("not moved into a database URL" in r.message for r in caplog.records)
        store.record("c", "a", EventType.open, at=NOW)
        assert store.erase("a") == 1 + 2  # here, and the two old rows of theirs
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT customer_id FROM tracking_events").fetchall() == [("b",)]
    db.close()


def test_a_busy_state_database_keeps_its_old_copy_until_later_and_erasure_reaches_it(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.sqlite"
    _old_state(state)
    busy = sqlite3.connect(state, isolation_level=None)
    busy.execute("BEGIN IMMEDIATE")  # a dispatch pass, mid-write
    busy.execute("INSERT INTO outbox_stand_in VALUES (1)")
    try:
        with TrackingEvents.beside(state) as store:  # copies; the drop has to wait
            assert store.counts()["click"] == 1
    finally:
        busy.execute("ROLLBACK")
        busy.close()
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT COUNT(*) FROM tracking_events").fetchone() == (3,)
    with TrackingEvents.beside(state) as store:
        assert store.counts()["click"] == 1  # not copied twice
        assert store.erase("a") == 2
        assert [e.customer_id for e in store.events()] == ["b"]
    with sqlite3.connect(state) as db:
        assert "tracking_events" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}


# ------------------------------------------------------------------- people and machines


def test_machine_reasons() -> None:
    policy = TrafficPolicy()

    def reason(**kw: Any) -> str | None:
        args = {"method": "GET", "user_agent": BROWSER, "kind": EventType.click, "at": NOW}
        return machine_reason(policy, **{"delivered_at": None, **args, **kw})

    assert reason() is None
    assert reason(method="HEAD") == "head"
    assert reason(user_agent=None) == "agent"
    assert reason(user_agent="Mozilla/5.0 (compatible; Mimecast URL Protect)") == "agent"
    assert reason(user_agent="GoogleImageProxy", kind=EventType.open) is None
    assert reason(user_agent="GoogleImageProxy") == "agent"
    assert reason(delivered_at=NOW - timedelta(seconds=9)) == "soon"
    assert reason(delivered_at=NOW - timedelta(seconds=10)) is None


def test_record_hit_folds_repeats_per_window_and_kind_of_traffic(
    database: Callable[[str], Target],
) -> None:
    with TrackingEvents(database("tracking")) as store:
        window = timedelta(minutes=30)
        new = [
            store.record_hit(
                "c", "a", EventType.click, at=NOW + timedelta(minutes=m), window=window
            )
            for m in (0, 10, 29, 31)
        ]
        assert new == [True, False, False, True]
        assert store.record_hit("c", "a", EventType.click, at=NOW, machine="agent")
        assert not store.record_hit("c", "a", EventType.click, at=NOW, machine="head")
        assert store.record_hit("c", "a", EventType.click, at=NOW, product_id="sku-1")
        assert not store.record_hit("c", "a", EventType.click, at=NOW, product_id="sku-1")
        assert store.record_hit("c", "a", EventType.open, at=NOW, window=window)
        # Hits taken at once may arrive out of order: one taken a second before the
        # stored event is its repeat, and the event starts with it, as if in order.
        earlier = NOW - timedelta(seconds=1)
        assert not store.record_hit("c", "a", EventType.open, at=earlier, window=window)
        for minutes, new in ((29, False), (30, True), (-31, True)):  # from the earlier hit
            at = NOW + timedelta(minutes=minutes)
            assert store.record_hit("c", "a", EventType.open, at=at, window=window) is new
        assert store.counts() == {"click": 3, "exposure": 0, "open": 3, "unsubscribe": 0}
        assert store.machine_hits() == {"agent": 2}
        assert store.machine_hits("another campaign") == {}
        assert _repeats(store) == {
            ("click", None, None, _at(NOW)): 2,
            ("click", None, "agent", _at(NOW)): 1,
            ("click", "sku-1", None, _at(NOW)): 1,
            ("open", None, None, _at(earlier)): 2,
        }
        with pytest.raises(ValueError, match="opens and clicks"):
            store.record_hit("c", "a", EventType.unsubscribe, at=NOW)
        with pytest.raises(ValueError, match="window must be positive"):
            store.record_hit("c", "a", EventType.click, at=NOW, window=timedelta(0))


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _repeats(store: TrackingEvents) -> dict[tuple[str, str | None, str | None, str], int]:
    """(type, product, machine, at) → repeats, of the events that have any."""
    t = tracking_events.c
    query = sa.select(t.type, t.product_id, t.machine, t.at, t.repeats).where(t.repeats > 0)
    db = open_database(store.target, branch="tracking")
    try:
        with db.read() as conn:
            return {(k, p, m, at): n for k, p, m, at, n in conn.execute(query)}
    finally:
        db.dispose()


def test_exposures_and_unsubscribes_are_stored_once_and_read_back(
    database: Callable[[str], Target],
) -> None:
    later = NOW + timedelta(hours=2)
    with TrackingEvents(database("tracking")) as store:
        sends = [("a", NOW, "v1"), ("b", NOW, "v2"), ("a", NOW, "v1")]
        assert store.record_exposures("c", sends) == 2
        assert store.record_exposures("c", sends) == 0  # idempotent
        assert store.record_exposures("c", []) == 0
        assert store.record_exposures("d", [("a", later, None)]) == 1
        assert store.record("c", "a", EventType.unsubscribe, at=later)
        assert not store.record("c", "a", EventType.unsubscribe, at=later + timedelta(hours=1))
        assert store.record("c", "b", EventType.click, at=later, product_id="sku-1")
        assert store.record("c", "b", EventType.click, at=later, product_id="sku-1")  # as it is
        with pytest.raises(ValueError, match="keeps"):
            store.record("c", "a", EventType.purchase)
        with pytest.raises(ValueError, match="timezone-aware"):
            store.record("c", "a", EventType.open, at=datetime(2026, 5, 1))

        assert store.delivered_at("c", "a") == NOW
        assert store.delivered_at("d", "a") == later
        assert store.delivered_at("c", "zz") is None
        assert store.counts("c") == {"click": 2, "exposure": 2, "open": 0, "unsubscribe": 1}
        assert store.counts()["exposure"] == 3
        every = list(store.tracked())
        assert [e.event.timestamp for e in every] == sorted(e.event.timestamp for e in every)
        assert [(t.campaign_id, t.variant) for t in store.tracked(types=[EventType.exposure])] == [
            ("c", "v1"),
            ("c", "v2"),
            ("d", None),
        ]
        assert list(store.tracked(types=[])) == []
        since = [(t.campaign_id, str(t.event.type)) for t in store.tracked(since=later)]
        assert sorted(since) == [("c", "click"), ("c", "click"), ("c", "unsubscribe"),
                                 ("d", "exposure")]  # fmt: skip
        assert {e.customer_id for e in store.events(campaign_id="d")} == {"a"}

        assert store.erase("a") == 3
        assert store.erase("a") == 0
        assert {e.customer_id for e in store.events()} == {"b"}


def test_a_tracking_database_from_before_schema_versions_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "tracking.sqlite"
    old = sqlite3.connect(path)  # the oldest shape: no machine flag, no repeat count
    old.executescript(
        """
        CREATE TABLE tracking_events (
            id INTEGER PRIMARY KEY, campaign_id TEXT NOT NULL, customer_id TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('exposure', 'open', 'click', 'unsubscribe')),
            product_id TEXT, variant TEXT, at TEXT NOT NULL);
        CREATE TABLE tracking_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE UNIQUE INDEX tracking_events_once ON tracking_events
            (campaign_id, customer_id, type) WHERE type IN ('exposure', 'unsubscribe');
        INSERT INTO tracking_events (campaign_id, customer_id, type, product_id, variant, at)
        VALUES ('c', 'a', 'exposure', NULL, 'v1', '2026-05-01T10:00:00.000000Z'),
               ('c', 'a', 'click', 'sku-1', NULL, '2026-05-01T11:00:00.000000Z');
        """
    )
    old.commit()
    old.close()

    with TrackingEvents(path) as store:
        assert store.counts() == {"click": 1, "exposure": 1, "open": 0, "unsubscribe": 0}
        at = datetime(2026, 5, 1, 11, 30, tzinfo=UTC)
        assert not store.record_hit("c", "a", EventType.click, at=at, product_id="sku-1")
        assert store.record_hit("c", "a", EventType.click, at=at, machine="agent")
        assert store.record_exposures("c", [("a", at, "v1")]) == 0  # the old unique key
        assert store.machine_hits() == {"agent": 1}
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("tracking_0001",)
        ]
        columns = [r[1] for r in check.execute("PRAGMA table_info(tracking_events)")]
        indexes = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        check.close()
    assert columns[-2:] == ["machine", "repeats"]
    assert {"tracking_events_hits", "tracking_events_at", "tracking_events_once"} <= indexes
    with TrackingEvents(path) as again:  # stamped: opening again changes nothing
        assert again.counts()["click"] == 1


# ----------------------------------------------------- several processes, one database


_HAMMER = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from delivery.events_store import TrackingEvents
from retail.types import EventType

target, customers, late = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = TrackingEvents(target if "://" in target else Path(target))
# Each process's clock a little apart: which hit is first depends on who locks first.
at = datetime(2026, 5, 1, 12, tzinfo=UTC) + timedelta(milliseconds=late)
print("ready", flush=True)
sys.stdin.readline()
new = sum(
    store.record_hit("c", f"cust-{i}", EventType.click, at=at, product_id="sku-1")
    for i in range(customers)
)
store.close()
print(new, flush=True)
"""


def test_the_same_click_from_several_processes_at_once_is_stored_once(
    database: Callable[[str], Target], tmp_path: Path
) -> None:
    # Each process clicks the same links in the same order: every click is a race.
    target, customers = database("tracking"), 150
    TrackingEvents(target).close()  # the schema first, as `track serve` makes it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _HAMMER, str(target), str(customers), str(late)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for late in (20, 10, 0)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # all at once
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        new = [int(worker.communicate(timeout=120)[0].strip()) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert sum(new) == customers
    with TrackingEvents(target) as store:
        assert store.counts()["click"] == customers
        assert set(_repeats(store).values()) == {len(workers) - 1}


def test_the_same_click_in_two_store_instances_at_once_is_stored_once(
    database: Callable[[str], Target],
) -> None:
    target = database("tracking")
    stores = [TrackingEvents(target), TrackingEvents(target)]
    barrier = threading.Barrier(8)
    results: list[bool] = []
    errors: list[BaseException] = []

    def hit(store: TrackingEvents) -> None:
        try:
            barrier.wait()
            for customer in range(25):  # every hit is a race of eight threads
                for kind in (EventType.open, EventType.click):
                    results.append(store.record_hit("c", f"cust-{customer}", kind, at=NOW))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hit, args=(stores[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    assert results.count(True) == 50  # one open and one click per customer
    with TrackingEvents(target) as store:
        assert store.counts() == {"click": 25, "exposure": 0, "open": 25, "unsubscribe": 0}


def test_rate_limiter_refills_and_forgets_the_oldest_keys() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(per_minute=60, burst=2), max_keys=2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    now[0] = 1.0
    assert limiter.take("a") == 0.0
    limiter.take("b")
    limiter.take("c")  # three keys: "a", the least recently used, is dropped
    assert len(limiter._buckets) == 2
