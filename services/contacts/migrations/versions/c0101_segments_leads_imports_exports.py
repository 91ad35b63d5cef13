"""segments, lead intake (rules and leads), import jobs and exports

Revision ID: c0101
Revises: c0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "c0101"
down_revision: str | None = "c0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _times() -> list[sa.Column[Any]]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("filter", sa.JSON),
        sa.Column("owner_id", sa.String(36), nullable=False),
        *_times(),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_segments_owner_created", "segments", ["owner_id", "created_at", "id"])
    op.create_index("ix_segments_created", "segments", ["created_at", "id"])
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_segment_members_contact", "segment_members", ["contact_id"])
    op.create_table(
        "lead_rules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("team_id", sa.String(36)),
        sa.Column("routes", sa.JSON, nullable=False),
        sa.Column("fallback_owner_id", sa.String(36), nullable=False),
        sa.Column("form_key", sa.String(64), unique=True),
        sa.Column("pipeline_id", sa.String(36)),
        sa.Column("default_tags", sa.JSON, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("leads_received", sa.Integer, nullable=False),
        sa.Column("last_owner_id", sa.String(36)),
        *_times(),
    )
    op.create_index("ix_lead_rules_created", "lead_rules", ["created_at", "id"])
    op.create_table(
        "leads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("is_new_contact", sa.Boolean, nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("rule_id", sa.String(36)),
        sa.Column("form_key", sa.String(64)),
        sa.Column("pipeline_id", sa.String(36)),
        sa.Column("title", sa.String(200)),
        sa.Column("message", sa.Text),
        sa.Column("company_name", sa.String(200)),
        sa.Column("amount", sa.String(40)),
        sa.Column("currency", sa.String(3)),
        sa.Column("utm", sa.JSON, nullable=False),
        sa.Column("actor_id", sa.String(36)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_leads_owner_status", "leads", ["owner_id", "status"])
    op.create_index("ix_leads_contact", "leads", ["contact_id"])
    op.create_index("ix_leads_received", "leads", ["received_at", "id"])
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("actor_id", sa.String(36), nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("actor_team_ids", sa.JSON, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("duplicate_policy", sa.String(10), nullable=False),
        sa.Column("mapping", sa.JSON, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("delimiter", sa.String(1), nullable=False),
        sa.Column("encoding", sa.String(20), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False),
        sa.Column("created", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("claimed_by", sa.String(36)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_import_jobs_status", "import_jobs", ["status", "created_at"])
    op.create_table(
        "exports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("actor_id", sa.String(36), nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_exports_actor", "exports", ["actor_id", "created_at"])


def downgrade() -> None:
    for table in ("exports", "import_jobs", "leads", "lead_rules", "segment_members", "segments"):
        op.drop_table(table)
