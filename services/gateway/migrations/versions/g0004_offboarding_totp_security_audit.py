"""offboarding, two-factor authentication, security audit

Revision ID: g0004
Revises: g0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "g0004"
down_revision: str | None = "g0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("offboarded_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("totp_secret", sa.String(400)))
        batch.add_column(sa.Column("totp_pending_secret", sa.String(400)))
        batch.add_column(
            sa.Column("totp_enabled", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger))
    op.create_table(
        "security_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(36)),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("record_type", sa.String(40), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("detail", sa.JSON),
    )
    op.create_index("ix_security_events_occurred_at", "security_events", ["occurred_at"])
    op.create_index("ix_security_events_record_id", "security_events", ["record_id"])


def downgrade() -> None:
    op.drop_table("security_events")
    with op.batch_alter_table("users") as batch:
        for column in (
            "totp_last_step",
            "totp_enabled",
            "totp_pending_secret",
            "totp_secret",
            "offboarded_at",
        ):
            batch.drop_column(column)
