"""client requests

Revision ID: c0005
Revises: c0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0005"
down_revision: str | None = "c0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("assignee_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_client_requests_assignee_id", "client_requests", ["assignee_id"])
    op.create_index(
        "ix_client_requests_contact_opened", "client_requests", ["contact_id", "opened_at", "id"]
    )
    op.create_index("ix_client_requests_opened", "client_requests", ["opened_at", "id"])
    op.create_index("ix_client_requests_status", "client_requests", ["status"])


def downgrade() -> None:
    op.drop_table("client_requests")
