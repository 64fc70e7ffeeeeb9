"""On PostgreSQL every store shares one database: the audit log, metrics, vendor ledger
and suppression list open side by side, each at its own schema branch."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from compliance.audit import AuditLog
from compliance.suppression import SuppressionList
from creative.vendor.ledger import RenderLedger
from runtime.metrics import Metrics
from storage.database import open_database
from tests.postgres import PostgresServer


def test_the_stores_share_one_postgresql_database(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    with (
        AuditLog(url, key=b"k" * 32) as audit,
        Metrics(url) as metrics,
        SuppressionList(url) as suppression,
    ):
        ledger = RenderLedger(url)
        try:
            audit.record("model", campaign="spring", version="v1")
            metrics.incr("emails_sent_total")
            suppression.add(["c1"], reason="unsubscribe", source="test")
            assert ledger.charge("k1", "r1", "spring", 1.0, Decimal("0.05"))
            assert audit.verify().ok
        finally:
            ledger.close()
    db = open_database(url, branch="audit")
    try:
        with db.read() as conn:
            heads = set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        db.dispose()
    assert heads == {"audit_0001", "metrics_0001", "suppression_0001", "vendor_ledger_0001"}
