"""A whole campaign with reelcast's state on PostgreSQL (REELCAST_DATABASE_URL): the flow
queues and sends through the shared outbox, a second dispatcher finds nothing left, the
report reads it back, the audit chain verifies there, and the workspace folder holds no
SQLite state at all."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from compliance.audit import AuditLog
from delivery.outbox import Outbox, OutboxState
from tests.postgres import PostgresServer

pytestmark = pytest.mark.slow

SECRET = "postgres-flow-pseudonym-secret-0123456789"
AUDIT_KEY = "postgres-flow-audit-key-0123456789"


def test_a_campaign_keeps_all_its_state_on_postgresql(
    prefect_api, campaign_params, postgres: PostgresServer, tmp_path: Path, monkeypatch
) -> None:
    from flows.campaign import campaign_flow
    from flows.operations import dispatch_flow
    from runtime.reports import campaign_report
    from runtime.settings import Settings

    url = postgres.create_database()
    monkeypatch.setenv("REELCAST_DATABASE_URL", url)
    monkeypatch.setenv("REELCAST_PSEUDONYM_SECRET", SECRET)
    monkeypatch.setenv("REELCAST_AUDIT_KEY", AUDIT_KEY)
    ws = tmp_path / "ws"

    summary = campaign_flow(campaign_params(ws, limit=4))

    assert (summary.queued, summary.sent) == (4, 4)
    assert len(list(mailbox.Maildir(ws / "mail", create=False))) == 4
    assert sorted(p.name for p in ws.glob("*.sqlite*")) == []  # no state in the folder
    with Outbox(url) as outbox:
        assert outbox.counts(summary.campaign)[OutboxState.sent] == 4
    assert dispatch_flow(workspace=str(ws))["sent"] == 0  # nothing is sent twice

    settings = Settings.for_workspace(ws)
    report = campaign_report(settings, settings.open_workspace(), summary.campaign)
    assert report.sends == 4
    with AuditLog(url, key=AUDIT_KEY.encode()) as log:
        verified = log.verify()
        assert verified.ok and verified.records > 0, verified.problem
