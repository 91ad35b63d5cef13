"""Company use cases: each one transaction, with its audit row and outbox events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts import access, search
from crm_contacts.audit.service import audit_change
from crm_contacts.common import publish_state, stale, utcnow
from crm_contacts.companies.models import Company
from crm_contacts.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate
from crm_contacts.custom_fields.service import validate_custom
from crm_contacts.phones import to_e164
from crm_kernel.auth import Principal
from crm_kernel.contracts.contacts import (
    CompanyCreated,
    CompanyDeleted,
    CompanyOwnerChanged,
    CompanyRestored,
    CompanyUpdated,
)
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import NotFound, Unprocessable
from crm_kernel.versioning import check_version

RECORD_TYPE = "company"
SORTABLE = {
    "created_at": Company.created_at,
    "updated_at": Company.updated_at,
    "name": Company.name,
}


def to_read(company: Company) -> CompanyRead:
    return CompanyRead.model_validate(company)


async def _load(
    session: AsyncSession, principal: Principal, company_id: str, *, in_trash: bool = False
) -> Company:
    """The company if the caller may see it (live, or in the trash), else 404."""
    deleted = Company.deleted_at.is_not(None) if in_trash else Company.deleted_at.is_(None)
    company = (
        await session.execute(
            select(Company).where(
                Company.id == company_id, deleted, owner_filter(principal, Company.owner_id)
            )
        )
    ).scalar_one_or_none()
    if company is None:
        raise NotFound(f"No company {company_id}" + (" in the trash." if in_trash else "."))
    return company


async def ensure_usable_company(
    session: AsyncSession, principal: Principal, company_id: str
) -> None:
    """422 naming `company_id` unless it is a live company the caller may see."""
    try:
        await _load(session, principal, company_id)
    except NotFound as exc:
        raise Unprocessable(
            f"No company {company_id} that you may see.",
            errors=[
                {
                    "field": "company_id",
                    "location": "body",
                    "message": "no such company",
                    "type": "value_error.reference",
                }
            ],
        ) from exc


async def create_company(
    *, db: Database, principal: Principal, data: CompanyCreate, phone_region: str
) -> CompanyRead:
    """Add a company, owned by the caller unless they may assign someone else."""
    owner_id = str(data.owner_id or principal.user_id)
    phone = to_e164(data.phone, phone_region) if data.phone else None
    now = utcnow()
    async with db.transaction() as session:
        if not await access.may_assign(session, principal, owner_id):
            raise access.owner_not_assignable()
        company = Company(
            id=str(new_id()),
            name=data.name,
            domain=data.domain,
            phone=phone,
            owner_id=owner_id,
            tags=sorted(set(data.tags)),
            custom=await validate_custom(session, "company", data.custom),
            created_at=now,
            updated_at=now,
        )
        session.add(company)
        await session.flush()
        read = to_read(company)
        audit_change(session, principal, RECORD_TYPE, "create", None, read)
        await publish_state(session, CompanyCreated, read, actor=principal.user_id)
    return read


async def get_company(*, db: Database, principal: Principal, company_id: str) -> CompanyRead:
    """One live company, or 404 when it does not exist or the caller may not see it."""
    async with db.session() as session:
        return to_read(await _load(session, principal, company_id))


async def list_companies(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    owner_id: str | None = None,
    domain: str | None = None,
    trash: bool = False,
    q: str | None = None,
) -> Page[CompanyRead]:
    """The companies the caller may see (or their trash), filtered, sorted and paged."""
    if trash:
        access.ensure_trash_role(principal)
    deleted = Company.deleted_at.is_not(None) if trash else Company.deleted_at.is_(None)
    query = select(Company).where(deleted, owner_filter(principal, Company.owner_id))
    if owner_id:
        query = query.where(Company.owner_id == owner_id)
    if domain:
        query = query.where(Company.domain == domain)
    if q:
        query = query.where(search.company_condition(q, sqlite=db.is_sqlite))
    keys = parse_sort(sort, SORTABLE, "-created_at", Company.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[CompanyRead](items=[to_read(row[0]) for row in rows], next_cursor=next_cursor)


async def update_company(
    *,
    db: Database,
    principal: Principal,
    company_id: str,
    data: CompanyUpdate,
    expected_version: int | None,
    phone_region: str,
) -> CompanyRead:
    """Change a company's fields; 412 if the version the caller read is stale."""
    sent = data.model_fields_set
    try:
        async with db.transaction() as session:
            company = await _load(session, principal, company_id)
            access.ensure_may_write(principal, company.owner_id)
            check_version(company.version, expected_version, data.version)
            before = to_read(company)
            for name in ("name", "domain"):
                if name in sent:
                    setattr(company, name, getattr(data, name))
            if "custom" in sent and data.custom is not None:
                company.custom = await validate_custom(session, "company", data.custom)
            if "tags" in sent and data.tags is not None:
                company.tags = sorted(set(data.tags))
            if "phone" in sent:
                company.phone = to_e164(data.phone, phone_region) if data.phone else None
            company.updated_at = utcnow()
            await session.flush()
            read = to_read(company)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
            await publish_state(session, CompanyUpdated, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("company") from exc
    return read


async def delete_company(
    *, db: Database, principal: Principal, company_id: str, expected_version: int | None
) -> None:
    """Move a company to the trash; its contacts keep their `company_id` (restorable)."""
    try:
        async with db.transaction() as session:
            company = await _load(session, principal, company_id)
            access.ensure_may_write(principal, company.owner_id)
            check_version(company.version, expected_version)
            before = to_read(company)
            company.deleted_at = company.updated_at = utcnow()
            await session.flush()
            read = to_read(company)
            audit_change(session, principal, RECORD_TYPE, "delete", before, read)
            await publish_state(session, CompanyDeleted, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("company") from exc


async def restore_company(
    *, db: Database, principal: Principal, company_id: str, expected_version: int | None
) -> CompanyRead:
    """Bring a company back from the trash (admins and heads of sales over their teams)."""
    access.ensure_trash_role(principal)
    try:
        async with db.transaction() as session:
            company = await _load(session, principal, company_id, in_trash=True)
            check_version(company.version, expected_version)
            before = to_read(company)
            company.deleted_at = None
            company.updated_at = utcnow()
            await session.flush()
            read = to_read(company)
            audit_change(session, principal, RECORD_TYPE, "restore", before, read)
            await publish_state(session, CompanyRestored, read, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("company") from exc
    return read


async def reassign_company(
    *,
    db: Database,
    principal: Principal,
    company_id: str,
    owner_id: str,
    expected_version: int | None,
) -> CompanyRead:
    """Give a company a new owner: admins anyone, a head of sales within their teams."""
    access.ensure_may_reassign(principal)
    try:
        async with db.transaction() as session:
            company = await _load(session, principal, company_id)
            check_version(company.version, expected_version)
            if not await access.may_assign(session, principal, owner_id):
                raise access.owner_not_assignable()
            before = to_read(company)
            if company.owner_id == owner_id:
                return before
            company.owner_id = owner_id
            company.updated_at = utcnow()
            await session.flush()
            read = to_read(company)
            audit_change(session, principal, RECORD_TYPE, "reassign", before, read)
            await publish_state(
                session,
                CompanyOwnerChanged,
                read,
                actor=principal.user_id,
                previous_owner_id=str(before.owner_id),
            )
    except StaleDataError as exc:
        raise stale("company") from exc
    return read
