"""send ledger: re-publication count of rows queued without a delivery report

Revision ID: m0003
Revises: m0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "m0003"
down_revision: str | None = "m0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "campaign_recipients",
        sa.Column("requeues", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_campaign_recipients_queued", "campaign_recipients", ["status", "queued_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_recipients_queued", table_name="campaign_recipients")
    with op.batch_alter_table("campaign_recipients") as batch:
        batch.drop_column("requeues")
