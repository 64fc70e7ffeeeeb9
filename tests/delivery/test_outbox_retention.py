"""The outbox does not grow by a GIF per customer: bodies go once sent; reports read none."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from delivery_support import CAMPAIGN, make_customer
from typer.testing import CliRunner

import delivery.outbox as outbox_module
from delivery.outbox import Outbox, OutboxState, PruneResult
from delivery.report import load_report
from storage import Target


def _bodies(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT customer_id, length(message) FROM outbox").fetchall())


def _queue(outbox: Outbox, compose: Callable[..., EmailMessage], n: int, due: datetime) -> None:
    customer = make_customer(n)
    outbox.enqueue(
        campaign_id=CAMPAIGN,
        customer_id=customer.id,
        recipient=str(customer.email),
        message=compose(customer),
        due_at=due,
    )


def test_a_send_pass_drops_the_bodies_it_sent_and_keeps_the_rest(
    tmp_path: Path, compose: Callable[..., EmailMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.sending import send_due
    from runtime.settings import Settings
    from runtime.workspace import Workspace

    for name in ("REELCAST_ESP_URL", "REELCAST_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(workspace=tmp_path)
    ws = Workspace(tmp_path).create()
    now = datetime.now(UTC)
    with Outbox(ws.state_db) as outbox:
        for n in (1, 2, 3):
            _queue(outbox, compose, n, now - timedelta(minutes=1))
        _queue(outbox, compose, 4, now + timedelta(days=1))  # due tomorrow
    report, _ = send_due(settings, ws)
    assert report.sent == 3
    bodies = _bodies(ws.state_db)
    assert [bodies[f"cust-0000{n}"] for n in (1, 2, 3)] == [0, 0, 0]
    assert bodies["cust-00004"] > 1000  # still to be sent: kept
    with Outbox(ws.state_db) as outbox:
        sent = outbox.get(CAMPAIGN, "cust-00001")
        assert sent is not None and sent.state is OutboxState.sent and sent.message_id


def test_bodies_stay_for_the_retention_period_when_asked(
    database: Callable[[str], Target], compose: Callable[..., EmailMessage]
) -> None:
    now = datetime.now(UTC)
    with Outbox(database("state")) as outbox:
        for n in (1, 2):
            _queue(outbox, compose, n, now)
        items = outbox.claim_due(now, 2)
        for item in items:
            outbox.begin_send(item, now)
        outbox.mark_sent(items[0].id, "a", now - timedelta(days=10))
        outbox.mark_sent(items[1].id, "b", now - timedelta(days=1))
        done = outbox.prune_bodies(now - timedelta(days=7))
        assert done.rows == 1 and done.bytes > 1000
        bodies = {i.customer_id: len(i.message) for i in outbox.items()}
        assert bodies["cust-00001"] == 0 and bodies["cust-00002"] > 1000
        assert outbox.prune_bodies(now - timedelta(days=7)) == PruneResult(rows=0, bytes=0)
        outbox.vacuum()  # SQLite rewrites the file; PostgreSQL vacuums the table
        assert {i.customer_id: len(i.message) for i in outbox.items()} == bodies


def test_the_report_never_loads_stored_bodies(
    tmp_path: Path, compose: Callable[..., EmailMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    db = tmp_path / "state.sqlite"
    with Outbox(db) as outbox:
        for n in range(1, 6):
            _queue(outbox, compose, n, now)
        for item in outbox.claim_due(now, 5):
            outbox.begin_send(item, now)
            outbox.mark_sent(item.id, f"p{item.id}", now)

    def no_full_rows(row: object) -> object:
        raise AssertionError("the report built a whole outbox row (address and body)")

    monkeypatch.setattr(outbox_module, "_item", no_full_rows)
    report = load_report(CAMPAIGN, state_db=db)
    assert sum(v.sends for v in report.variants) == 5


def test_outbox_prune_command(tmp_path: Path, compose: Callable[..., EmailMessage]) -> None:
    from cli.outbox import outbox_app

    now = datetime.now(UTC)
    with Outbox(tmp_path / "state.sqlite") as outbox:
        _queue(outbox, compose, 1, now)
        [item] = outbox.claim_due(now, 1)
        outbox.begin_send(item, now)
        outbox.mark_sent(item.id, "a", now - timedelta(days=3))
    result = CliRunner().invoke(
        outbox_app, ["prune", "--older-than-days", "2", "--vacuum", "--workspace", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "dropped 1 email bodies" in result.output
    assert _bodies(tmp_path / "state.sqlite") == {"cust-00001": 0}


def test_pruned_bodies_give_their_space_back_to_the_disk(
    tmp_path: Path, compose: Callable[..., EmailMessage]
) -> None:
    db = tmp_path / "state.sqlite"
    now = datetime.now(UTC)
    with Outbox(db) as outbox:
        for n in range(1, 41):
            _queue(outbox, compose, n, now)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        full = db.stat().st_size
        for item in outbox.claim_due(now, 40):
            outbox.begin_send(item, now)
            outbox.mark_sent(item.id, "p", now)
        outbox.prune_bodies(now)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert db.stat().st_size < full / 3
