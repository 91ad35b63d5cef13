"""Full-text search conditions for `?q=`, run by the database's own text search.

SQLite: FTS5 tables kept in sync by triggers (migration c0004); PostgreSQL: a
generated tsvector column with a GIN index. A query is cut into words (any
script; case does not matter); every word must start a word of the record
(prefix match). A query that looks like a phone number is normalised as the
phone field is, so `8 (912) 345-67-89`, `+7 912 3456789` and `9123456789`
all find +79123456789; a partial number matches by its digits' prefix. A
whole e-mail address that some contact has is one e-mail index lookup (word
by word, `example*` and `com*` would match the whole base). PostgreSQL plans
rely on the fine tsvector statistics of migration c0102.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    column,
    false,
    func,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TextualSelect

from crm_contacts.companies.models import Company
from crm_contacts.contacts.models import Contact
from crm_contacts.phones import to_e164
from crm_kernel.problems import DomainError

# Enough for a full name with a company; more words only slow the query.
MAX_WORDS = 8
# Matching companies listed by id in the contact query (beyond: a sub-select).
MAX_COMPANIES = 500
_PHONE = re.compile(r"[\d\s()+\-.]+")
# A whole address (local@domain.tld): looked up in the e-mail index, not word by word.
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@.]+")


def words(query: str) -> list[str]:
    """Lower-cased words of any script: letters and digits, never FTS or tsquery syntax."""
    return [w[:50] for w in re.findall(r"[^\W_]+", query.lower())][:MAX_WORDS]


def _fts5(terms: list[str], column_name: str | None = None) -> str:
    prefix = f"{column_name} : " if column_name else ""
    return prefix + " ".join(f'"{term}"*' for term in terms)


def _tsquery(terms: list[str]) -> str:
    return " & ".join(f"{term}:*" for term in terms)


def _tsvector_matches(table: str, tsquery: str) -> ColumnElement[bool]:
    """`<table>.search_vector @@ to_tsquery(...)`; the column exists on PostgreSQL only."""
    vector: ColumnElement[Any] = literal_column(f"{table}.search_vector")
    config: ColumnElement[Any] = literal_column("'simple'::regconfig")
    return vector.op("@@", is_comparison=True)(
        func.to_tsquery(config, bindparam(f"{table}_q", tsquery))
    )


def _contact_ids_fts5(terms: list[str], column_name: str | None = None) -> TextualSelect:
    """Ids of the contacts whose FTS5 row matches (starting from the FTS index)."""
    return (
        text(
            "SELECT contact_search_keys.contact_id FROM contacts_fts"
            " JOIN contact_search_keys ON contact_search_keys.key = contacts_fts.rowid"
            " WHERE contacts_fts MATCH :contacts_q"
        )
        .bindparams(contacts_q=_fts5(terms, column_name))
        .columns(column("contact_id"))
    )


def _contacts_matching(
    terms: list[str], *, sqlite: bool, column_name: str | None = None
) -> ColumnElement[bool]:
    if sqlite:
        return Contact.id.in_(_contact_ids_fts5(terms, column_name))
    if len(terms) == 1:
        return _tsvector_matches("contacts", _tsquery(terms))
    # GIN reads every match of each prefix term in full before intersecting, so
    # `anna:* & petrova:*` costs all the Annas (60,000 of 1,000,000: 40-140 ms).
    # Only the longest word (the rarest, as a rule) goes to the index; the whole
    # query is checked on those rows through ts_match_vq, the function behind
    # `@@`, which the planner does not match to the index.
    longest = max(terms, key=len)
    vector: ColumnElement[Any] = literal_column("contacts.search_vector")
    config: ColumnElement[Any] = literal_column("'simple'::regconfig")
    every_word = func.ts_match_vq(
        vector, func.to_tsquery(config, bindparam("contacts_all_q", _tsquery(terms)))
    )
    return _tsvector_matches("contacts", _tsquery([longest])) & every_word


def _companies_matching(terms: list[str], *, sqlite: bool) -> ColumnElement[bool]:
    if sqlite:
        matching = text(
            "SELECT company_search_keys.company_id FROM company_search_keys"
            " JOIN companies_fts ON companies_fts.rowid = company_search_keys.key"
            " WHERE companies_fts MATCH :companies_q"
        ).bindparams(companies_q=_fts5(terms))
        return Company.id.in_(matching.columns(column("company_id")))
    return _tsvector_matches("companies", _tsquery(terms))


def _phone_digits(query: str) -> str | None:
    """The digits of a query that is a phone number or a piece of one (5+ digits)."""
    if not _PHONE.fullmatch(query.strip()):
        return None
    digits = re.sub(r"\D", "", query)
    return digits if len(digits) >= 5 else None


async def _email_exists(session: AsyncSession, email: str) -> bool:
    """Whether some contact has exactly this (lower-cased) e-mail: one index lookup.

    A whole address searched word by word would be `ivan* koval* mail* example*
    com*`, whose common words match the whole base; when no contact has the exact
    address (a typo, a partial domain) the word search still runs.
    """
    found = await session.scalar(select(Contact.id).where(Contact.email == email).limit(1))
    return found is not None


async def contact_condition(
    session: AsyncSession, query: str, *, sqlite: bool, phone_region: str
) -> ColumnElement[bool]:
    """Contacts whose name, e-mail or phone, or whose company's name, match the query."""
    digits = _phone_digits(query)
    if digits is not None:
        try:
            return Contact.phone == to_e164(query, phone_region)
        except DomainError:
            # Not a whole number: match the start of the stored digits.
            return _contacts_matching([digits], sqlite=sqlite, column_name="phone")
    email = query.strip().lower()
    if _EMAIL.fullmatch(email) and await _email_exists(session, email):
        return Contact.email == email
    terms = words(query)
    if not terms:
        return false()
    if sqlite:
        # One IN over a UNION ALL, so SQLite starts from the few FTS matches and
        # looks contacts up by key; with an OR it scans contacts in list order.
        by_company = text(
            "SELECT contacts.id FROM companies_fts"
            " JOIN company_search_keys ON company_search_keys.key = companies_fts.rowid"
            " JOIN companies ON companies.id = company_search_keys.company_id"
            " JOIN contacts ON contacts.company_id = companies.id"
            " WHERE companies_fts MATCH :companies_q AND companies.deleted_at IS NULL"
        ).bindparams(companies_q=_fts5(terms))
        return Contact.id.in_(union_all(_contact_ids_fts5(terms), by_company.columns(column("id"))))
    # PostgreSQL: the matching companies first (a small table), so the contact
    # condition is a BitmapOr of the GIN index and the company_id index; with a
    # sub-select in the OR the planner walks the whole list order instead.
    in_company = select(Company.id).where(
        Company.deleted_at.is_(None), _companies_matching(terms, sqlite=False)
    )
    company_ids = list(await session.scalars(in_company.limit(MAX_COMPANIES + 1)))
    own = _contacts_matching(terms, sqlite=False)
    if not company_ids:
        return own
    if len(company_ids) > MAX_COMPANIES:
        return own | Contact.company_id.in_(in_company)
    return own | Contact.company_id.in_(company_ids)


def company_condition(query: str, *, sqlite: bool) -> ColumnElement[bool]:
    """Companies whose name or domain match the query."""
    terms = words(query)
    return _companies_matching(terms, sqlite=sqlite) if terms else false()


def contact_name_condition(name: str, *, sqlite: bool) -> ColumnElement[bool]:
    """Contacts with a name word starting like the last word of `name` (duplicate candidates).

    Only the first five letters count, so Петров, Петрова and Петровой meet;
    the caller compares the candidates' names more closely.
    """
    terms = words(name)
    if not terms:
        return false()
    stem = [terms[-1][:5]]
    return _contacts_matching(stem, sqlite=sqlite, column_name="names" if sqlite else None)
