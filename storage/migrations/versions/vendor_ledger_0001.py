"""vendor_ledger: storyboard key → vendor render id, charges, local fallbacks

Revision ID: vendor_ledger_0001
Revises:
Create Date: 2026-12-05

The tables as reelcast made them before schema versions: an existing workspace keeps
its paid renders (`if_not_exists`), and is stamped at this revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "vendor_ledger_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("vendor_ledger",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vendor_renders",
        sa.Column("key", sa.Text, primary_key=True),  # storyboard key (a content hash)
        sa.Column("render_id", sa.Text),  # the vendor's id; NULL until the first 2xx
        sa.Column("campaign", sa.Text),
        sa.Column("status", sa.Text, nullable=False),  # submitting | planned | … | failed
        sa.Column("updated_at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "vendor_charges",
        sa.Column("render_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("campaign", sa.Text),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("amount", sa.Text, nullable=False),  # Decimal as text: never a float
        sa.Column("charged_at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "render_fallbacks",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("campaign", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("render_fallbacks")
    op.drop_table("vendor_charges")
    op.drop_table("vendor_renders")
