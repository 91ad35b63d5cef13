"""consents kept from contact events

Revision ID: n0003
Revises: n0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "n0003"
down_revision: str | None = "n0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("channel", sa.String(10), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consents")
