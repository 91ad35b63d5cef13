"""pipelines, stages, deals, stage history, contact replica

Revision ID: d0002
Revises: d0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d0002"
down_revision: str | None = "d0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "stages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), sa.ForeignKey("pipelines.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("probability", sa.Numeric(5, 2), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("deleted_at", TS),
    )
    op.create_index("ix_stages_pipeline_position", "stages", ["pipeline_id", "position"])
    op.create_table(
        "deals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("contact_id", sa.String(36)),
        sa.Column("company_id", sa.String(36)),
        sa.Column("pipeline_id", sa.String(36), sa.ForeignKey("pipelines.id"), nullable=False),
        sa.Column("stage_id", sa.String(36), sa.ForeignKey("stages.id"), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("amount", sa.Numeric(18, 4)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("expected_close_date", sa.Date),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("lost_reason", sa.String(100)),
        sa.Column("lost_comment", sa.String(1000)),
        sa.Column("source_campaign_id", sa.String(36)),
        sa.Column("stage_entered_at", TS, nullable=False),
        sa.Column("closed_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_deals_contact_id", "deals", ["contact_id"])
    op.create_index("ix_deals_company_id", "deals", ["company_id"])
    op.create_index(
        "ix_deals_stage_created", "deals", ["pipeline_id", "stage_id", "created_at", "id"]
    )
    op.create_index(
        "ix_deals_stage_currency", "deals", ["pipeline_id", "stage_id", "currency", "amount"]
    )
    op.create_index(
        "ix_deals_owner_stage_created",
        "deals",
        ["owner_id", "pipeline_id", "stage_id", "created_at", "id"],
    )
    op.create_index("ix_deals_owner_created", "deals", ["owner_id", "created_at", "id"])
    op.create_index("ix_deals_created", "deals", ["created_at", "id"])
    op.create_table(
        "stage_history",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("deal_id", sa.String(36), sa.ForeignKey("deals.id"), nullable=False),
        sa.Column("pipeline_id", sa.String(36), nullable=False),
        sa.Column("from_stage_id", sa.String(36)),
        sa.Column("to_stage_id", sa.String(36), nullable=False),
        sa.Column("to_position", sa.Integer, nullable=False),
        sa.Column("to_probability", sa.Numeric(5, 2), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("entered_at", TS, nullable=False),
        sa.Column("left_at", TS),
        sa.Column("moved_by", sa.String(36)),
    )
    op.create_index(
        "ix_stage_history_deal_entered", "stage_history", ["deal_id", "entered_at", "id"]
    )
    op.create_index("ix_stage_history_to_stage", "stage_history", ["to_stage_id", "entered_at"])
    op.create_table(
        "contact_refs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(201), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("contact_refs", "stage_history", "deals", "stages", "pipelines"):
        op.drop_table(table)
