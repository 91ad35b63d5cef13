"""recipient directory, templates, campaigns, the send ledger, attributed deals

Revision ID: m0002
Revises: m0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "m0002"
down_revision: str | None = "m0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recipients",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("first_name", sa.String(200), nullable=False),
        sa.Column("last_name", sa.String(200)),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(40)),
        sa.Column("position", sa.String(200)),
        sa.Column("company_id", sa.String(36)),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("lifecycle_stage", sa.String(20)),
        sa.Column("consent_email", sa.Boolean, nullable=False),
        sa.Column("consent_sms", sa.Boolean, nullable=False),
        sa.Column("custom", sa.JSON, nullable=False),
        sa.Column("created_at", TS),
        sa.Column("updated_at", TS),
        sa.Column("deleted_at", TS),
        sa.Column("merged_into", sa.String(36)),
        sa.Column("erased", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "recipient_scores",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("rfm_group", sa.String(40), nullable=False),
        sa.Column("as_of", TS, nullable=False),
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("filter", sa.JSON),
        sa.Column("deleted_at", TS),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_segment_members_contact", "segment_members", ["contact_id"])
    op.create_table(
        "suppressions",
        sa.Column("channel", sa.String(10), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(500)),
        sa.Column("body_html", sa.Text),
        sa.Column("body_text", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("template_id", sa.String(36)),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("segment_ids", sa.JSON, nullable=False),
        sa.Column("exclude_segment_ids", sa.JSON, nullable=False),
        sa.Column("rfm_groups", sa.JSON, nullable=False),
        sa.Column("cost", sa.Numeric(18, 4)),
        sa.Column("currency", sa.String(3)),
        sa.Column("attribution_days", sa.Integer, nullable=False),
        sa.Column("rate_per_second", sa.Integer, nullable=False),
        sa.Column("track_opens", sa.Boolean, nullable=False),
        sa.Column("track_clicks", sa.Boolean, nullable=False),
        sa.Column("marketing_event_id", sa.String(36)),
        sa.Column("ab_test_percent", sa.Integer, nullable=False),
        sa.Column("ab_metric", sa.String(10), nullable=False),
        sa.Column("ab_window_minutes", sa.Integer, nullable=False),
        sa.Column("ab_phase", sa.String(10), nullable=False),
        sa.Column("ab_decide_at", TS),
        sa.Column("ab_winner_variant_id", sa.String(36)),
        sa.Column("scheduled_at", TS),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("audience", sa.Integer, nullable=False),
        sa.Column("next_batch_at", TS),
        sa.Column("last_progress_at", TS),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS),
    )
    op.create_index("ix_campaigns_status", "campaigns", ["status"])
    op.create_table(
        "campaign_variants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("template_id", sa.String(36)),
        sa.Column("subject", sa.String(500)),
        sa.Column("body_html", sa.Text),
        sa.Column("body_text", sa.Text),
    )
    op.create_index("ix_campaign_variants_campaign_id", "campaign_variants", ["campaign_id"])
    op.create_table(
        "campaign_recipients",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("address_key", sa.String(320), nullable=False),
        sa.Column("variant_id", sa.String(36)),
        sa.Column("in_test", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("claim", sa.String(36)),
        sa.Column("queued_at", TS),
        sa.Column("sent_at", TS),
        sa.Column("delivered_at", TS),
        sa.Column("failed_at", TS),
        sa.Column("error", sa.String(500)),
        sa.Column("opens", sa.Integer, nullable=False),
        sa.Column("clicks", sa.Integer, nullable=False),
        sa.Column("first_opened_at", TS),
        sa.Column("first_clicked_at", TS),
        sa.Column("unsubscribed_at", TS),
        sa.Column("bounced_at", TS),
        sa.Column("complained_at", TS),
        sa.UniqueConstraint("campaign_id", "contact_id", name="uq_campaign_recipients_contact"),
        sa.UniqueConstraint("campaign_id", "address_key", name="uq_campaign_recipients_address"),
    )
    op.create_index(
        "ix_campaign_recipients_status", "campaign_recipients", ["campaign_id", "status", "id"]
    )
    op.create_index("ix_campaign_recipients_contact", "campaign_recipients", ["contact_id"])
    op.create_table(
        "campaign_deals",
        sa.Column("deal_id", sa.String(36), primary_key=True),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("won_at", TS),
        sa.Column("amount", sa.Numeric(18, 4)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_campaign_deals_campaign_id", "campaign_deals", ["campaign_id"])


def downgrade() -> None:
    for table in (
        "campaign_deals",
        "campaign_recipients",
        "campaign_variants",
        "campaigns",
        "templates",
        "suppressions",
        "segment_members",
        "segments",
        "recipient_scores",
        "recipients",
    ):
        op.drop_table(table)
