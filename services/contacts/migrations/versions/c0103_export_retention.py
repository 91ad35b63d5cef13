"""exports expire: the CSV may be deleted (content nullable, purged_at) and an index to find them

Revision ID: c0103
Revises: c0102
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0103"
down_revision: str | Sequence[str] | None = "c0102"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exports") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary, nullable=True)
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True)))
    op.create_index("ix_exports_purged_created", "exports", ["purged_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_exports_purged_created", table_name="exports")
    # Expired exports keep their record, with an empty file.
    op.execute(
        sa.text("UPDATE exports SET content = :empty WHERE content IS NULL").bindparams(empty=b"")
    )
    with op.batch_alter_table("exports") as batch:
        batch.drop_column("purged_at")
        batch.alter_column("content", existing_type=sa.LargeBinary, nullable=False)
