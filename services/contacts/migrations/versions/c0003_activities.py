"""activities

Revision ID: c0003
Revises: c0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0003"
down_revision: str | None = "c0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("deal_id", sa.String(36)),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("author_id", sa.String(36), nullable=False),
        sa.Column("private", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_activities_deal_id", "activities", ["deal_id"])
    op.create_index(
        "ix_activities_contact_occurred", "activities", ["contact_id", "occurred_at", "id"]
    )
    op.create_index("ix_activities_occurred", "activities", ["occurred_at", "id"])


def downgrade() -> None:
    op.drop_table("activities")
