"""`reelcast db upgrade` and `reelcast db migrate --from-workspace`: a SQLite workspace's
state moved into a real PostgreSQL, counted, and the audit chain still verifying there."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from compliance.audit import AuditLog
from compliance.suppression import SuppressionList
from creative.vendor.ledger import RenderLedger
from delivery.events_store import TrackingEvents
from delivery.outbox import Outbox, OutboxState
from retail.types import EventType
from runtime.metrics import Metrics
from tests.postgres import PostgresServer

KEY = "db-cli-audit-key-0123456789abcdef"
SECRET = "db-cli-pseudonym-secret-0123456789"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _reelcast(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=clean | {"COLUMNS": "200", "REELCAST_PSEUDONYM_SECRET": SECRET} | env,
        timeout=180,
        check=False,
    )


def _old_workspace(ws: Path) -> None:
    """State in every store, written the one-machine way (SQLite files)."""
    with Outbox(ws / "state.sqlite") as outbox:
        for i in range(5):
            outbox.enqueue(
                campaign_id="spring",
                customer_id=f"C{i}",
                recipient=f"c{i}@example.com",
                message=f"Message-ID: <m{i}@shop>\r\nSubject: hi\r\n\r\nbody {i}\r\n".encode(),
                due_at=NOW,
                now=NOW,
            )
        for item in outbox.claim_due(NOW, 3):
            assert outbox.begin_send(item, NOW)
            outbox.mark_sent(item.id, f"provider-{item.id}", NOW)
    with SuppressionList(ws / "state.sqlite") as suppression:
        suppression.add(["C9", "C8"], reason="unsubscribe", source="link")
    with TrackingEvents(ws / "tracking.sqlite") as events:
        events.record("spring", "C1", EventType.click, at=NOW, product_id="p1")
        events.record("spring", "C2", EventType.open, at=NOW)
    with AuditLog(ws / "audit.sqlite", key=KEY.encode()) as audit:
        audit.append("sent", campaign="spring", entries=[("cu_1", {"n": 1}), ("cu_2", {"n": 2})])
        audit.append("sent", campaign="spring", entries=[("cu_3", {"n": 3})])
    with Metrics(ws / "metrics.sqlite") as metrics:
        metrics.incr("emails_sent_total", 3)
        metrics.observe("send", 0.25)
    ledger = RenderLedger(ws / "vendor.sqlite")
    ledger.intend("a" * 64, "spring")
    ledger.close()


def test_a_workspace_moves_to_postgresql_with_every_row_and_a_valid_audit_chain(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    old = tmp_path / "old"
    _old_workspace(old)
    url = postgres.create_database()
    env = {"REELCAST_DATABASE_URL": url, "REELCAST_AUDIT_KEY": KEY}
    new_ws = str(tmp_path / "new")

    moved = _reelcast("db", "migrate", "--from-workspace", str(old), "--workspace", new_ws, env=env)

    assert moved.returncode == 0, moved.stderr
    assert "every count matched" in moved.stdout
    rows = {
        cells[2].strip(): (cells[3].strip(), cells[4].strip())
        for line in moved.stdout.splitlines()
        if len(cells := line.split("│")) == 6
    }
    assert rows["outbox"] == ("5", "5") and rows["suppression"] == ("2", "2")
    assert rows["audit"] == ("3", "3") and rows["tracking_events"] == ("2", "2")
    assert rows["counter"] == ("1", "1") and rows["latency"] == ("1", "1")
    assert rows["audit_checkpoints (from audit.checkpoints)"] == ("", "2")
    with Outbox(url) as outbox:
        assert outbox.counts("spring")[OutboxState.sent] == 3
        assert outbox.counts("spring")[OutboxState.queued] == 2
        item = outbox.get("spring", "C4")
        assert item is not None and item.message.endswith(b"body 4\r\n")
        # ids keep going after the copied ones (the sequence was moved past them)
        assert outbox.enqueue(
            campaign_id="summer", customer_id="C1", recipient="c1@example.com",
            message=b"Message-ID: <n1@shop>\r\n\r\nx\r\n", due_at=NOW, now=NOW,
        )  # fmt: skip
    with SuppressionList(url) as suppression:
        assert suppression.ids() == {"C8", "C9"}
    with TrackingEvents(url) as events:
        assert events.counts("spring") == {"click": 1, "open": 1} | {
            k: v for k, v in events.counts("spring").items() if k not in ("click", "open")
        }
    verified = _reelcast("audit", "verify", "--workspace", new_ws, env=env)
    assert verified.returncode == 0 and "OK" in verified.stdout, verified.stdout + verified.stderr

    again = _reelcast("db", "migrate", "--from-workspace", str(old), "--workspace", new_ws, env=env)
    assert again.returncode == 2
    assert "already holds" in again.stderr and "nothing was copied" in again.stderr
    assert "Traceback" not in again.stderr


def test_migrate_without_a_database_url_says_what_to_set(tmp_path: Path) -> None:
    result = _reelcast("db", "migrate", "--from-workspace", str(tmp_path), env={})
    assert result.returncode == 2
    assert "REELCAST_DATABASE_URL is not set" in result.stderr


def test_upgrade_brings_every_store_up_to_date_and_refuses_a_newer_schema(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    first = _reelcast(
        "db", "upgrade", "--workspace", str(tmp_path), env={"REELCAST_DATABASE_URL": url}
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("up to date") == 5
    assert "postgresql+psycopg://reelcast@127.0.0.1" in first.stdout

    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'outbox_0099' "
                             "WHERE version_num LIKE 'outbox_%'"))  # fmt: skip
    engine.dispose()
    newer = _reelcast(
        "db", "upgrade", "--workspace", str(tmp_path), env={"REELCAST_DATABASE_URL": url}
    )
    assert newer.returncode == 2
    assert "outbox_0099" in newer.stderr and "Upgrade reelcast" in newer.stderr
    assert "Traceback" not in newer.stderr
