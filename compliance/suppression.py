"""The suppression list: customers who must never be mailed again (unsubscribes, bounces)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from storage.database import open_database
from storage.targets import Target

_metadata = sa.MetaData()
suppression = sa.Table(
    "suppression",
    _metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("added_at", sa.Text, nullable=False),
)


class SuppressionList:
    """The set of suppressed customer ids, shared by every campaign: a SQLite file, or
    PostgreSQL when `target` is a database URL."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._db = open_database(target, branch="suppression", pool_size=2)

    def close(self) -> None:
        """Close the database connections."""
        self._db.dispose()

    def __enter__(self) -> SuppressionList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, customer_ids: Iterable[str], *, reason: str, source: str) -> int:
        """Suppress customers; returns how many were new. The first reason recorded stays."""
        now = datetime.now(UTC).isoformat()
        rows = [
            {"customer_id": cid, "reason": reason, "source": source, "added_at": now}
            for cid in dict.fromkeys(customer_ids)
        ]
        if not rows:
            return 0
        statement = (
            self._db.insert(suppression)
            .on_conflict_do_nothing(index_elements=["customer_id"])
            .returning(suppression.c.customer_id)
        )
        with self._db.write() as conn:
            return len(conn.execute(statement, rows).all())

    def __contains__(self, customer_id: object) -> bool:
        if not isinstance(customer_id, str):
            return False
        query = sa.select(sa.literal(1)).where(suppression.c.customer_id == customer_id)
        with self._db.read() as conn:
            return conn.execute(query).first() is not None

    def ids(self) -> set[str]:
        """Every suppressed customer id."""
        with self._db.read() as conn:
            return set(conn.execute(sa.select(suppression.c.customer_id)).scalars())
