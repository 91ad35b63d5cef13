"""Export use cases: a CSV of exactly the contacts the caller may list, audited with its size."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.audit.models import AuditEntry
from crm_contacts.audit.service import record
from crm_contacts.common import utcnow
from crm_contacts.contacts import service as contacts
from crm_contacts.contacts.schemas import ContactRead
from crm_contacts.exports import csvout
from crm_contacts.exports.models import ContactExport
from crm_contacts.exports.schemas import ExportCreate, ExportRead
from crm_contacts.segments import fields
from crm_contacts.segments import service as segments
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.pagination import MAX_LIMIT
from crm_kernel.problems import DomainError, Forbidden, NotFound, Unprocessable

RECORD_TYPE = "export"
# PostgreSQL advisory lock taken by an export's commit and an erasure's export scan.
ERASURE_LOCK = 0x43524D4558505254
# An erasure that began this long before an export may still commit during its build.
ERASURE_MARGIN = timedelta(hours=1)


class Gone(DomainError):
    status, title, slug = 410, "Gone", "gone"


def ensure_may_export(principal: Principal, export_roles: str) -> None:
    """The permission `contacts.export`: admins and the roles the setting names."""
    granted = {r.strip() for r in export_roles.split(",") if r.strip()}
    if principal.is_admin or principal.role.value in granted:
        return
    raise Forbidden("Exporting contacts needs the permission contacts.export.")


def to_read(export: ContactExport, retention: timedelta) -> ExportRead:
    read = ExportRead.model_validate(export)
    read.download_path = f"/exports/{export.id}/download"
    read.expires_at = export.created_at + retention
    return read


def _text(value: object | None) -> str | None:
    return str(value) if value is not None else None


async def check_filters(db: Database, data: ExportCreate) -> None:
    """422 before any page is read: a bad `filter` names its part; a segment takes no filters
    (its member list has none, and silently dropping them would export more than asked)."""
    if data.segment_id is not None:
        alongside = sorted(data.model_dump(exclude_none=True).keys() - {"segment_id"})
        if alongside:
            raise Unprocessable(
                "A segment is exported whole: the list's filters do not apply to it.",
                errors=[
                    {"field": name, "location": "body", "message": "not with segment_id"}
                    for name in alongside
                ],
            )
    if data.filter is not None:
        async with db.session() as session:
            await fields.contact_condition(session, data.filter, sqlite=db.is_sqlite)


async def _everything(
    db: Database, principal: Principal, data: ExportCreate, phone_region: str
) -> list[ContactRead]:
    """Every contact the list (or the segment's member list) shows the caller, page by page,
    so an export can never hold more than the caller could read there."""
    found: list[ContactRead] = []
    cursor: str | None = None
    while True:
        if data.segment_id is not None:
            page = await segments.members(
                db=db,
                principal=principal,
                segment_id=str(data.segment_id),
                limit=MAX_LIMIT,
                cursor=cursor,
                sort=None,
            )
        else:
            page = await contacts.list_contacts(
                db=db,
                principal=principal,
                limit=MAX_LIMIT,
                cursor=cursor,
                sort=None,
                phone_region=phone_region,
                owner_id=_text(data.owner_id),
                team_id=_text(data.team_id),
                company_id=_text(data.company_id),
                lifecycle_stage=data.lifecycle_stage,
                tag=data.tag,
                q=data.q,
                created_after=data.created_after,
                created_before=data.created_before,
                updated_after=data.updated_after,
                updated_before=data.updated_before,
                raw_filter=data.filter,
            )
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found


async def take_turns_with_erasures(session: AsyncSession) -> None:
    """An export's commit and an erasure's scan of the stored exports never overlap, so
    one always sees the other. SQLite needs nothing: a writer waits for the other."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ERASURE_LOCK})


async def _erased_since(session: AsyncSession, since: datetime) -> set[str]:
    """Contacts erased lately (the audit's time index: a few rows at most)."""
    query = select(AuditEntry.record_id).where(
        AuditEntry.at >= since - ERASURE_MARGIN,
        AuditEntry.action == "erase",
        AuditEntry.record_type == "contact",
    )
    return set(await session.scalars(query))


async def create_export(
    *,
    db: Database,
    principal: Principal,
    data: ExportCreate,
    phone_region: str,
    export_roles: str,
    retention: timedelta,
) -> ExportRead:
    ensure_may_export(principal, export_roles)
    await check_filters(db, data)
    started = utcnow()
    found = await _everything(db, principal, data, phone_region)
    content, rows = csvout.render(found)
    export = ContactExport(
        id=str(new_id()),
        actor_id=principal.user_id,
        filters=data.model_dump(mode="json", exclude_none=True),
        row_count=rows,
        content=content,
        created_at=utcnow(),
    )
    async with db.transaction() as session:
        session.add(export)
        await session.flush()  # SQLite: the write lock first, then read what committed
        await take_turns_with_erasures(session)
        # An erasure that committed during the build did not see this export: leave its rows out.
        erased = await _erased_since(session, started)
        if erased & {str(c.id) for c in found}:
            export.content, export.row_count = csvout.render(
                c for c in found if str(c.id) not in erased
            )
        read = to_read(export, retention)
        record(
            session,
            actor_id=principal.user_id,
            action="export",
            record_type=RECORD_TYPE,
            record_id=export.id,
            before=None,
            after=read,
        )
    return read


async def _load(db: Database, principal: Principal, export_id: str) -> ContactExport:
    """Only whoever made the export (or an admin) may fetch it."""
    query: Any = select(ContactExport).where(ContactExport.id == export_id)
    if not principal.is_admin:
        query = query.where(ContactExport.actor_id == principal.user_id)
    async with db.session() as session:
        export = (await session.scalars(query)).first()
    if export is None:
        raise NotFound(f"No export {export_id}.")
    return export


async def get_export(
    *, db: Database, principal: Principal, export_id: str, retention: timedelta
) -> ExportRead:
    return to_read(await _load(db, principal, export_id), retention)


async def purge(session: AsyncSession, export_ids: Sequence[str], now: datetime) -> int:
    """Delete the stored CSV of these exports (those not purged yet); the records stay."""
    result = await session.execute(
        update(ContactExport)
        .where(ContactExport.id.in_(export_ids), ContactExport.purged_at.is_(None))
        .values(content=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def download(
    *, db: Database, principal: Principal, export_id: str, retention: timedelta
) -> bytes:
    """The CSV while it is kept; 410 once it expired (deleted here if the pruner was late)."""
    export = await _load(db, principal, export_id)
    now = utcnow()
    if export.content is not None and export.created_at + retention > now:
        return export.content
    if export.purged_at is None:
        async with db.transaction() as session:
            await purge(session, [export.id], now)
    hours = retention.total_seconds() / 3600
    raise Gone(
        f"Export {export_id} expired: its file is deleted {hours:g} h after it was made."
        " Make a new export.",
        expired_at=(export.created_at + retention).isoformat(),
    )
