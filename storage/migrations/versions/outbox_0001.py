"""outbox: every email of every campaign, sent exactly once

Revision ID: outbox_0001
Revises:
Create Date: 2026-12-06

The table as reelcast made it before schema versions: an existing workspace keeps its
rows (`if_not_exists`), and is stamped at this revision. An outbox made before the
`variant` column existed gets it here (NULL in its old rows).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "outbox_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("outbox",)
depends_on: str | Sequence[str] | None = None

STATES = ("queued", "sending", "sent", "failed", "suppressed", "unknown")


def upgrade() -> None:
    op.create_table(
        "outbox",
        # 64-bit on PostgreSQL (BIGSERIAL); on SQLite exactly INTEGER, the rowid alias.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("recipient", sa.Text, nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=False),
        sa.Column("message_id", sa.Text),
        # Times are fixed-width UTC text (2026-05-01T10:00:00.000000Z): they compare as
        # the instants they name, the same way on both engines.
        sa.Column("due_at", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default=sa.text("'queued'")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("claim", sa.Text),
        sa.Column("claimed_at", sa.Text),
        sa.Column("send_started_at", sa.Text),
        sa.Column("provider_id", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("sent_at", sa.Text),
        sa.Column("variant", sa.Text),
        sa.CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="outbox_state"
        ),
        sa.UniqueConstraint("campaign_id", "customer_id", name="outbox_key"),
        if_not_exists=True,
    )
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbox")}
    if "variant" not in columns:
        op.add_column("outbox", sa.Column("variant", sa.Text))
    op.create_index("outbox_due", "outbox", ["state", "due_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("outbox_due", table_name="outbox")
    op.drop_table("outbox")
