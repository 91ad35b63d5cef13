"""marketing events: events, participants, contacts' deals

Revision ID: m0100
Revises: m0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "m0100"
down_revision: str | None = "m0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketing_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(500)),
        sa.Column("capacity", sa.Integer),
        sa.Column("attribution_days", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_marketing_events_starts_at", "marketing_events", ["starts_at"])
    op.create_table(
        "marketing_event_participants",
        sa.Column(
            "event_id",
            sa.String(36),
            sa.ForeignKey("marketing_events.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True)),
        sa.Column("registered_at", sa.DateTime(timezone=True)),
        sa.Column("attended_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_marketing_event_participants_contact_id",
        "marketing_event_participants",
        ["contact_id"],
    )
    op.create_index(
        "ix_marketing_event_participants_status",
        "marketing_event_participants",
        ["event_id", "status"],
    )
    op.create_table(
        "marketing_event_deals",
        sa.Column("deal_id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("amount", sa.String(40)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("won_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_marketing_event_deals_contact_id", "marketing_event_deals", ["contact_id"])


def downgrade() -> None:
    op.drop_table("marketing_event_deals")
    op.drop_table("marketing_event_participants")
    op.drop_table("marketing_events")
