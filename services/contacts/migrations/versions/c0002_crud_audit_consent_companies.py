"""contacts soft delete, audit, consent ledger, companies

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0002"
down_revision: str | None = "c0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True)))
    op.create_index("ix_contacts_deleted", "contacts", ["deleted_at"])

    op.create_table(
        "audit",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(36)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("record_type", sa.String(40), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    op.create_index("ix_audit_record", "audit", ["record_type", "record_id", "at"])
    op.create_index("ix_audit_at", "audit", ["at", "id"])
    op.create_index("ix_audit_actor", "audit", ["actor_id", "at"])

    op.create_table(
        "consent_ledger",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("actor_id", sa.String(36)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_consent_ledger_contact", "consent_ledger", ["contact_id", "at"])

    op.create_table(
        "companies",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(253)),
        sa.Column("phone", sa.String(20)),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("custom", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_companies_domain", "companies", ["domain"])
    op.create_index("ix_companies_owner_created", "companies", ["owner_id", "created_at", "id"])
    op.create_index("ix_companies_created", "companies", ["created_at", "id"])
    op.create_index("ix_companies_deleted", "companies", ["deleted_at"])


def downgrade() -> None:
    op.drop_table("companies")
    op.drop_table("consent_ledger")
    op.drop_table("audit")
    op.drop_index("ix_contacts_deleted", "contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("deleted_at")
