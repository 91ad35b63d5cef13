"""erasure and merge marks, system timeline entries, read metering, task command keys

Revision ID: c0008_erase_merge_timeline
Revises: c0007_custom_fields
Create Date: 2026-11-29

Columns are added with ALTER TABLE ADD COLUMN (no batch rebuild), so the
SQLite search triggers of c0004 stay in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0008_erase_merge_timeline"
down_revision: str | None = "c0007_custom_fields"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("erased_at", sa.DateTime(timezone=True)))
    op.add_column("contacts", sa.Column("merged_into", sa.String(36)))
    op.add_column("tasks", sa.Column("create_key", sa.String(200)))
    op.create_index("ix_tasks_create_key", "tasks", ["create_key"], unique=True)
    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(60), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("deal_id", sa.String(36)),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_timeline_entries_contact_occurred",
        "timeline_entries",
        ["contact_id", "occurred_at", "id"],
    )
    op.create_table(
        "deal_contacts",
        sa.Column("deal_id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36)),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "contact_views",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contact_views_user_viewed", "contact_views", ["user_id", "viewed_at"])
    op.create_index("ix_contact_views_contact", "contact_views", ["contact_id", "viewed_at"])
    op.create_table(
        "bulk_read_alerts",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bulk_read_alerts")
    op.drop_table("contact_views")
    op.drop_table("deal_contacts")
    op.drop_table("timeline_entries")
    op.drop_index("ix_tasks_create_key", "tasks")
    op.drop_column("tasks", "create_key")
    op.drop_column("contacts", "merged_into")
    op.drop_column("contacts", "erased_at")
