"""full-text search over contacts and companies (SQLite FTS5 / PostgreSQL tsvector)

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-24

SQLite: an FTS5 table per searchable table, kept in sync by triggers. FTS5
rows are addressed by an integer rowid and the records by UUID, so a key table
gives every record a stable integer (the implicit rowid of `contacts` is not
stable: VACUUM may renumber it). PostgreSQL: a generated tsvector column with
a GIN index ('simple' configuration: no stemming, any script, lower-cased).

Phones are indexed as digits twice: the whole E.164 number without `+`
(79123456789) and its last ten digits (9123456789, the national number in
RU and NANP), so a partial number typed from either start is found by prefix.
These objects are dialect-specific and not part of the ORM models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c0004"
down_revision: str | None = "c0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONTACT_ROW = """
    SELECT k.key,
           coalesce({r}.first_name, '') || ' ' || coalesce({r}.last_name, ''),
           coalesce({r}.email, ''),
           CASE WHEN {r}.phone IS NULL THEN ''
                ELSE substr({r}.phone, 2) || ' ' || substr({r}.phone, -10) END
    FROM contact_search_keys k WHERE k.contact_id = {r}.id
"""
_COMPANY_ROW = """
    SELECT k.key, {r}.name, coalesce({r}.domain, '')
    FROM company_search_keys k WHERE k.company_id = {r}.id
"""

_SQLITE = [
    "CREATE TABLE contact_search_keys ("
    " key INTEGER PRIMARY KEY, contact_id VARCHAR(36) NOT NULL UNIQUE)",
    "CREATE VIRTUAL TABLE contacts_fts USING fts5("
    " names, email, phone, tokenize = 'unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
        INSERT INTO contact_search_keys (contact_id) VALUES (new.id);
        INSERT INTO contacts_fts (rowid, names, email, phone) {_CONTACT_ROW.format(r="new")};
    END""",
    f"""CREATE TRIGGER contacts_search_update
        AFTER UPDATE OF first_name, last_name, email, phone ON contacts BEGIN
        DELETE FROM contacts_fts WHERE rowid =
            (SELECT key FROM contact_search_keys WHERE contact_id = old.id);
        INSERT INTO contacts_fts (rowid, names, email, phone) {_CONTACT_ROW.format(r="new")};
    END""",
    """CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
        DELETE FROM contacts_fts WHERE rowid =
            (SELECT key FROM contact_search_keys WHERE contact_id = old.id);
        DELETE FROM contact_search_keys WHERE contact_id = old.id;
    END""",
    "INSERT INTO contact_search_keys (contact_id) SELECT id FROM contacts",
    "INSERT INTO contacts_fts (rowid, names, email, phone) "
    + _CONTACT_ROW.format(r="contacts").replace(
        "FROM contact_search_keys k WHERE k.contact_id = contacts.id",
        "FROM contacts JOIN contact_search_keys k ON k.contact_id = contacts.id",
    ),
    "CREATE TABLE company_search_keys ("
    " key INTEGER PRIMARY KEY, company_id VARCHAR(36) NOT NULL UNIQUE)",
    "CREATE VIRTUAL TABLE companies_fts USING fts5("
    " name, domain, tokenize = 'unicode61 remove_diacritics 2')",
    f"""CREATE TRIGGER companies_search_insert AFTER INSERT ON companies BEGIN
        INSERT INTO company_search_keys (company_id) VALUES (new.id);
        INSERT INTO companies_fts (rowid, name, domain) {_COMPANY_ROW.format(r="new")};
    END""",
    f"""CREATE TRIGGER companies_search_update AFTER UPDATE OF name, domain ON companies BEGIN
        DELETE FROM companies_fts WHERE rowid =
            (SELECT key FROM company_search_keys WHERE company_id = old.id);
        INSERT INTO companies_fts (rowid, name, domain) {_COMPANY_ROW.format(r="new")};
    END""",
    """CREATE TRIGGER companies_search_delete AFTER DELETE ON companies BEGIN
        DELETE FROM companies_fts WHERE rowid =
            (SELECT key FROM company_search_keys WHERE company_id = old.id);
        DELETE FROM company_search_keys WHERE company_id = old.id;
    END""",
    "INSERT INTO company_search_keys (company_id) SELECT id FROM companies",
    "INSERT INTO companies_fts (rowid, name, domain) "
    + _COMPANY_ROW.format(r="companies").replace(
        "FROM company_search_keys k WHERE k.company_id = companies.id",
        "FROM companies JOIN company_search_keys k ON k.company_id = companies.id",
    ),
]

# E-mails are split at @ and dots as well as kept whole, so any part is found.
_CONTACT_VECTOR = """to_tsvector('simple'::regconfig,
    coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' '
    || coalesce(email, '') || ' ' || translate(coalesce(email, ''), '@.', '  ') || ' '
    || coalesce(substr(phone, 2), '') || ' ' || coalesce(right(phone, 10), ''))"""
_COMPANY_VECTOR = """to_tsvector('simple'::regconfig,
    coalesce(name, '') || ' ' || coalesce(domain, '') || ' '
    || translate(coalesce(domain, ''), '.', ' '))"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE:
            op.execute(statement)
    elif dialect == "postgresql":
        for table, vector in (("contacts", _CONTACT_VECTOR), ("companies", _COMPANY_VECTOR)):
            op.add_column(
                table,
                sa.Column(
                    "search_vector",
                    postgresql.TSVECTOR,
                    sa.Computed(vector, persisted=True),
                ),
            )
            op.create_index(
                f"ix_search_{table}", table, ["search_vector"], postgresql_using="gin"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in (
            "contacts_search_insert",
            "contacts_search_update",
            "contacts_search_delete",
            "companies_search_insert",
            "companies_search_update",
            "companies_search_delete",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for table in ("contacts_fts", "contact_search_keys", "companies_fts", "company_search_keys"):
            op.execute(f"DROP TABLE IF EXISTS {table}")
    elif dialect == "postgresql":
        for table in ("contacts", "companies"):
            op.drop_index(f"ix_search_{table}", table)
            op.drop_column(table, "search_vector")
