"""suppression: customers who must never be mailed again

Revision ID: suppression_0001
Revises:
Create Date: 2026-12-05

The table as reelcast made it before schema versions: an existing workspace keeps its
rows (`if_not_exists`), and is stamped at this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "suppression_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("suppression",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppression",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("added_at", sa.Text, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("suppression")
