"""Tracking events in their own database: the workspace wiring, the one-time move from
state.sqlite, erasure, and the rules that tell people from machines (issue 12)."""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from delivery_support import CAMPAIGN, NOW, SECRET
from starlette.applications import Starlette
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from delivery.events_store import TrackingEvents, feedback_events, tracking_db_beside
from delivery.links import make_token
from delivery.outbox import Outbox
from delivery.traffic import RateLimit, RateLimiter, TrafficPolicy, machine_reason
from retail.types import EventType
from runtime.workspace import Workspace

CUSTOMER = "cust-00042"
PRODUCT_URL = "https://shop.example.com/p/trail-runner"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


# ------------------------------------------------------------ the workspace's tracking db


Served = Callable[[Starlette, dict[str, Any]], None]


def _serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent_at: datetime, while_up: Served
) -> Path:
    """`reelcast track serve` on a workspace with one sent email; uvicorn.run is replaced
    by `while_up(app, uvicorn options)`. Returns the workspace."""
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
    result = CliRunner().invoke(cli, ["--workspace", str(ws), "--catalog", str(catalog)])
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
        mode = store._fetch("PRAGMA journal_mode")
        assert mode == [("wal",)]


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


def test_record_hit_folds_repeats_per_window_and_kind_of_traffic(tmp_path: Path) -> None:
    with TrackingEvents(tmp_path / "t.sqlite") as store:
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
        assert store.counts()["click"] == 3
        assert store.machine_hits() == {"agent": 2}
        with pytest.raises(ValueError, match="opens and clicks"):
            store.record_hit("c", "a", EventType.unsubscribe, at=NOW)


def test_rate_limiter_refills_and_forgets_the_oldest_keys() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(per_minute=60, burst=2), max_keys=2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    now[0] = 1.0
    assert limiter.take("a") == 0.0
    limiter.take("b")
    limiter.take("c")  # three keys: "a", the least recently used, is dropped
    assert len(limiter._buckets) == 2
