"""audit: the hash-chained audit log, its key record and its checkpoints

Revision ID: audit_0001
Revises:
Create Date: 2026-12-05

`audit` and `audit_meta` as reelcast made them before schema versions: an existing
workspace keeps its records (`if_not_exists`), and is stamped at this revision.
`audit_checkpoints` is new: it holds the checkpoints when the log is in a database named
by URL (a SQLite file keeps its `audit.checkpoints` file beside it).

Triggers refuse UPDATE and DELETE on the records and the checkpoints (and TRUNCATE on
PostgreSQL), so honest code cannot change history by accident.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "audit_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("audit",)
depends_on: str | Sequence[str] | None = None

#: 64-bit on PostgreSQL; on SQLite exactly INTEGER, so that it is the rowid.
_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_GUARDS = [  # (trigger, table, event)
    ("audit_no_update", "audit", "UPDATE"),
    ("audit_no_delete", "audit", "DELETE"),
    ("audit_checkpoints_no_update", "audit_checkpoints", "UPDATE"),
    ("audit_checkpoints_no_delete", "audit_checkpoints", "DELETE"),
]
_PG_GUARDS = [
    ("audit_no_truncate", "audit", "TRUNCATE"),
    ("audit_checkpoints_no_truncate", "audit_checkpoints", "TRUNCATE"),
]


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("seq", _BIG, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("campaign", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_index("audit_subject", "audit", ["subject"], if_not_exists=True)
    op.create_table(
        "audit_meta",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _BIG, primary_key=True, autoincrement=True),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("head", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("mac", sa.Text),
        if_not_exists=True,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'"
            " USING ERRCODE = 'restrict_violation'; END $$"
        )
        for name, table, event in _GUARDS + _PG_GUARDS:
            each = "STATEMENT" if event == "TRUNCATE" else "ROW"
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {event} ON {table}"
                f" FOR EACH {each} EXECUTE FUNCTION audit_append_only()"
            )
    else:
        for name, table, event in _GUARDS:
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {event} ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_meta")
    op.drop_index("audit_subject", table_name="audit")
    op.drop_table("audit")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
