"""tracking: opens, clicks, unsubscribes and exposures, and the store's own markers

Revision ID: tracking_0001
Revises:
Create Date: 2026-12-05

The tables as reelcast made them before schema versions: an existing tracking.sqlite
(or a state.sqlite that held the events) keeps its rows (`if_not_exists`) and is stamped
at this revision. A table from before machine traffic was told apart lacks `machine` and
`repeats`; they are added here, as the store used to add them when it opened.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "tracking_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("tracking",)
depends_on: str | Sequence[str] | None = None

# SQLite: INTEGER PRIMARY KEY is the rowid, as before. PostgreSQL: a bigserial.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Fixed-width UTC text ('2026-05-01T10:00:00.000000Z'): compared byte by byte on both.
_TIME = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
_ONCE = "type IN ('exposure', 'unsubscribe')"


def upgrade() -> None:
    op.create_table(
        "tracking_events",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("product_id", sa.Text),
        sa.Column("variant", sa.Text),
        sa.Column("at", _TIME, nullable=False),
        # NULL: a person; else the delivery.traffic reason code ('head', 'agent', 'soon')
        sa.Column("machine", sa.Text),
        # hits folded into this one (the same de-duplication window)
        sa.Column("repeats", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint(
            "type IN ('exposure', 'open', 'click', 'unsubscribe')", name="tracking_events_type"
        ),
        if_not_exists=True,
    )
    have = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("tracking_events")}
    if "machine" not in have:
        op.add_column("tracking_events", sa.Column("machine", sa.Text))
    if "repeats" not in have:
        op.add_column(
            "tracking_events",
            sa.Column("repeats", sa.Integer, nullable=False, server_default=sa.text("0")),
        )
    op.create_table(
        "tracking_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "tracking_events_campaign", "tracking_events", ["campaign_id", "type"], if_not_exists=True
    )
    op.create_index("tracking_events_at", "tracking_events", ["at"], if_not_exists=True)
    op.create_index(
        "tracking_events_hits",
        "tracking_events",
        ["campaign_id", "customer_id", "type", "at"],
        if_not_exists=True,
    )
    # One exposure and one unsubscribe per campaign and customer, however often they are
    # recorded; opens and clicks are folded per window by the store's `record_hit`.
    op.create_index(
        "tracking_events_once",
        "tracking_events",
        ["campaign_id", "customer_id", "type"],
        unique=True,
        sqlite_where=sa.text(_ONCE),
        postgresql_where=sa.text(_ONCE),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("tracking_meta")
    op.drop_table("tracking_events")
