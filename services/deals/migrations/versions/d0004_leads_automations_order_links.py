"""deal source and lead, fuller contact replica, campaign ids, automations, order status history

Revision ID: d0004
Revises: d0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d0004"
down_revision: str | None = "d0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("source", sa.String(50)))
        batch.add_column(sa.Column("lead_id", sa.String(36)))
        batch.create_index("ux_deals_lead", ["lead_id"], unique=True)
    with op.batch_alter_table("contact_refs") as batch:
        batch.add_column(sa.Column("first_name", sa.String(100)))
        batch.add_column(sa.Column("last_name", sa.String(100)))
        batch.add_column(sa.Column("email", sa.String(320)))
        batch.add_column(sa.Column("phone", sa.String(32)))
        batch.add_column(
            sa.Column("consent_email", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("consent_sms", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table("campaign_refs", sa.Column("id", sa.String(36), primary_key=True))
    op.create_table(
        "automations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("pipeline_id", sa.String(36), sa.ForeignKey("pipelines.id"), nullable=False),
        sa.Column("stage_id", sa.String(36), sa.ForeignKey("stages.id"), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(36)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_automations_stage", "automations", ["stage_id", "active"])
    op.create_table(
        "automation_runs",
        sa.Column("automation_id", sa.String(36), primary_key=True),
        sa.Column("stay_id", sa.String(36), primary_key=True),
        sa.Column("deal_id", sa.String(36), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(200)),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index(
        "ix_automation_runs_automation_at", "automation_runs", ["automation_id", "at"]
    )
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "board_totals",
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("stage_id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("deals", sa.Integer, nullable=False),
        sa.Column("priced", sa.Integer, nullable=False),
        sa.Column("amount", sa.Numeric(20, 4), nullable=False),
    )
    op.execute(
        "INSERT INTO board_totals (pipeline_id, stage_id, owner_id, currency, deals, priced, amount) "
        "SELECT pipeline_id, stage_id, owner_id, currency, count(*), count(amount), "
        "coalesce(sum(amount), 0) FROM deals GROUP BY pipeline_id, stage_id, owner_id, currency"
    )
    op.create_table(
        "order_status_changes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_order_status_changes_order", "order_status_changes", ["order_id", "at"])
    # Orders made before this revision: their creation (and current status, if it moved).
    op.execute(
        "INSERT INTO order_status_changes (id, order_id, status, at) "
        "SELECT id, id, 'created', created_at FROM orders"
    )
    op.execute(
        "INSERT INTO order_status_changes (id, order_id, status, at) "
        "SELECT 'x' || substr(id, 2), id, status, updated_at FROM orders WHERE status <> 'created'"
    )


def downgrade() -> None:
    op.drop_table("order_status_changes")
    op.drop_table("board_totals")
    op.drop_table("scheduler_leases")
    op.drop_table("automation_runs")
    op.drop_table("automations")
    op.drop_table("campaign_refs")
    with op.batch_alter_table("contact_refs") as batch:
        for column in ("consent_sms", "consent_email", "phone", "email", "last_name", "first_name"):
            batch.drop_column(column)
    with op.batch_alter_table("deals") as batch:
        batch.drop_index("ux_deals_lead")
        batch.drop_column("lead_id")
        batch.drop_column("source")
