"""per-contact notification preferences (category opt-outs, SMS quiet hours)

Revision ID: n0005
Revises: n0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "n0005"
down_revision: str | None = "n0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("opt_out", sa.JSON, nullable=False),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("quiet_start", sa.String(5)),
        sa.Column("quiet_end", sa.String(5)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_preferences")
