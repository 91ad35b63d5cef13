"""search: finer planner statistics on the tsvector columns; merges c0008 and c0101

Revision ID: c0102
Revises: c0008_erase_merge_timeline, c0101
Create Date: 2026-11-29

PostgreSQL estimates a word missing from a column's most common elements at
half the rarest one's frequency. With the default statistics target (100) that
rarest frequency is high, so a surname with 20 matches among 200,000 contacts
was estimated at ~870 rows and "newest first, first page" walked the whole
created_at index filtering on the tsvector (120-500 ms) instead of reading the
GIN matches and sorting them (< 1 ms). A target of 1,000 keeps ~10,000 common
elements, so rare words are estimated as rare. ANALYZE samples 300,000 rows
(seconds at a million contacts). SQLite (FTS5) needs nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c0102"
down_revision: str | Sequence[str] | None = ("c0008_erase_merge_timeline", "c0101")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("contacts", "companies")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN search_vector SET STATISTICS 1000")
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN search_vector SET STATISTICS -1")
