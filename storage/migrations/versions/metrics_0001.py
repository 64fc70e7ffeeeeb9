"""metrics: latency observations and counters (`reelcast metrics`)

Revision ID: metrics_0001
Revises:
Create Date: 2026-12-05

The tables as reelcast made them before schema versions: an existing workspace keeps
its observations (`if_not_exists`), and is stamped at this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "metrics_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("metrics",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "latency",
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_index("latency_stage", "latency", ["stage", "at"], if_not_exists=True)
    op.create_table(
        "counter",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("counter")
    op.drop_index("latency_stage", table_name="latency")
    op.drop_table("latency")
