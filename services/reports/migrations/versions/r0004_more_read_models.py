"""read models of contacts' history, activities, tasks, requests, leads, campaigns, marketing events;
deal lead-mix columns and the deal aggregates; job tables (scores, claims)

Revision ID: r0004
Revises: r0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0004"
down_revision: str | None = "r0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("rm_contacts") as batch:
        batch.add_column(sa.Column("lifecycle_stage", sa.String(40)))
        batch.add_column(sa.Column("deleted_at", TIME))
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("rm_deals") as batch:
        batch.add_column(sa.Column("contact_id", sa.String(36)))
        batch.add_column(sa.Column("source", sa.String(40)))
        batch.add_column(sa.Column("source_campaign_id", sa.String(36)))
        batch.add_column(sa.Column("expected_close_date", sa.Date))
        batch.add_column(sa.Column("stage_entered_at", TIME))
        batch.add_column(
            sa.Column("amount_band", sa.String(12), nullable=False, server_default="none")
        )
    op.create_index("ix_rm_deals_contact", "rm_deals", ["contact_id"])
    op.create_index("ix_rm_deals_created", "rm_deals", ["created_at"])
    op.create_index(
        "ix_rm_stage_stays_pipeline_entered", "rm_stage_stays", ["pipeline_id", "entered_at"]
    )
    op.create_table(
        "rm_contact_stages",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("lifecycle_stage", sa.String(40)),
        sa.Column("deleted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "rm_activities",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("deal_id", sa.String(36)),
        sa.Column("activity_type", sa.String(20), nullable=False),
        sa.Column("author_id", sa.String(36), nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("deleted_at", TIME),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_rm_activities_author_occurred", "rm_activities", ["author_id", "occurred_at"]
    )
    op.create_table(
        "rm_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("assignee_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36)),
        sa.Column("deal_id", sa.String(36)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("completed_at", TIME),
        sa.Column("deleted_at", TIME),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_rm_tasks_assignee_status_due", "rm_tasks", ["assignee_id", "status", "due_at"]
    )
    op.create_table(
        "rm_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("assignee_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("resolved_at", TIME),
        sa.Column("resolution_seconds", sa.Integer),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "rm_leads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("is_new_contact", sa.Boolean, nullable=False),
        sa.Column("utm_campaign", sa.String(200)),
        sa.Column("received_at", TIME, nullable=False),
    )
    op.create_index("ix_rm_leads_owner_received", "rm_leads", ["owner_id", "received_at"])
    op.create_table(
        "rm_campaigns",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cost", sa.Numeric(18, 4)),
        sa.Column("currency", sa.String(3)),
        sa.Column("attribution_days", sa.Integer, nullable=False),
        sa.Column("marketing_event_id", sa.String(36)),
        sa.Column("audience", sa.Integer, nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "rm_campaign_variants",
        sa.Column("campaign_id", sa.String(36), primary_key=True),
        sa.Column("variant_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "rm_message_facts",
        sa.Column("campaign_id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("variant_id", sa.String(36)),
        sa.Column("first_at", TIME, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
    )
    op.create_index("ix_rm_message_facts_contact", "rm_message_facts", ["contact_id", "kind"])
    op.create_table(
        "rm_marketing_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("starts_at", TIME, nullable=False),
        sa.Column("invited", sa.Integer, nullable=False),
        sa.Column("registered", sa.Integer, nullable=False),
        sa.Column("attended", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "rm_participants",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("step", sa.String(12), primary_key=True),
        sa.Column("at", TIME, nullable=False),
    )
    op.create_table(
        "rm_deal_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("created", sa.Integer, nullable=False),
        sa.Column("won", sa.Integer, nullable=False),
        sa.Column("lost", sa.Integer, nullable=False),
        sa.Column("won_amount", sa.Numeric(20, 4), nullable=False),
    )
    op.create_table(
        "rm_deal_mix",
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(40), primary_key=True),
        sa.Column("amount_band", sa.String(12), primary_key=True),
        sa.Column("won", sa.Integer, nullable=False),
        sa.Column("lost", sa.Integer, nullable=False),
    )
    op.create_table(
        "contact_scores",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("recency", sa.Integer, nullable=False),
        sa.Column("frequency", sa.Integer, nullable=False),
        sa.Column("monetary", sa.Integer, nullable=False),
        sa.Column("rfm_group", sa.String(20), nullable=False),
        sa.Column("revenue_to_date", sa.String(40), nullable=False),
        sa.Column("predicted_clv", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("scored_at", TIME, nullable=False),
    )
    op.create_table(
        "job_claims",
        sa.Column("job", sa.String(60), primary_key=True),
        sa.Column("slot", sa.String(120), primary_key=True),
        sa.Column("claimed_at", TIME, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "job_claims",
        "contact_scores",
        "rm_deal_mix",
        "rm_deal_days",
        "rm_participants",
        "rm_marketing_events",
        "rm_message_facts",
        "rm_campaign_variants",
        "rm_campaigns",
        "rm_leads",
        "rm_requests",
        "rm_tasks",
        "rm_activities",
        "rm_contact_stages",
    ):
        op.drop_table(table)
    op.drop_index("ix_rm_stage_stays_pipeline_entered", "rm_stage_stays")
    op.drop_index("ix_rm_deals_created", "rm_deals")
    op.drop_index("ix_rm_deals_contact", "rm_deals")
    with op.batch_alter_table("rm_deals") as batch:
        for column in (
            "amount_band",
            "stage_entered_at",
            "expected_close_date",
            "source_campaign_id",
            "source",
            "contact_id",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("rm_contacts") as batch:
        for column in ("version", "deleted_at", "lifecycle_stage"):
            batch.drop_column(column)
