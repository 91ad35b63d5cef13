"""stage stays read model (funnel, time in stage); stage names and positions

Revision ID: r0003
Revises: r0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rm_stages") as batch:
        batch.add_column(sa.Column("name", sa.String(200)))
        batch.add_column(sa.Column("position", sa.Integer))
    op.create_table(
        "rm_stage_stays",
        sa.Column("deal_id", sa.String(36), primary_key=True),
        sa.Column("stage_id", sa.String(36), primary_key=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_rm_stage_stays_pipeline_stage", "rm_stage_stays", ["pipeline_id", "stage_id"])


def downgrade() -> None:
    op.drop_table("rm_stage_stays")
    with op.batch_alter_table("rm_stages") as batch:
        batch.drop_column("position")
        batch.drop_column("name")
