"""An erased person leaves every stored export: their CSV row, and their e-mail or phone
used as a search value in an export's filters (the export record and its audit row)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.audit.models import AuditEntry
from crm_contacts.exports import csvout
from crm_contacts.exports.models import ContactExport
from crm_contacts.exports.service import RECORD_TYPE, take_turns_with_erasures

_NOT_DIGITS = re.compile(r"\D")
# Fewer digits than this are not taken for a phone number (years, counts, ids).
_MIN_PHONE_DIGITS = 7
_FREE_TEXT = ("q", "filter")


async def remove_contact(session: AsyncSession, contact_id: str) -> int:
    """Drop the contact's row from every stored CSV (row_count follows); how many exports.

    Ids are unique UUIDs, so a byte match finds the candidates; the CSV parse then
    removes only a row whose first cell (the id column) is the contact's.
    """
    await take_turns_with_erasures(session)
    needle = contact_id.encode()
    if session.get_bind().dialect.name == "sqlite":
        holds = func.instr(ContactExport.content, needle) > 0  # its LIKE does not match blobs
    else:
        holds = ContactExport.content.op("LIKE")(b"%" + needle + b"%")  # bytea LIKE bytea
    candidates = await session.scalars(
        select(ContactExport.id).where(ContactExport.content.is_not(None), holds)
    )
    changed = 0
    for export_id in list(candidates):
        # One at a time: a CSV may be tens of megabytes.
        export = await session.get(ContactExport, export_id)
        if export is None or export.content is None:
            continue
        content, removed = csvout.without_row(export.content, contact_id)
        if removed:
            export.content = content
            export.row_count = max(0, export.row_count - removed)
            changed += 1
        await session.flush()
        session.expunge(export)
    return changed


def _mentions(value: str, email: str | None, phone: str | None) -> bool:
    if email and email.lower() in value.lower():
        return True
    digits, phone_digits = _NOT_DIGITS.sub("", value), _NOT_DIGITS.sub("", phone or "")
    if not phone_digits or len(digits) < _MIN_PHONE_DIGITS:
        return False
    # "+7 912 345-67-89", "9123456789" and "+79123456789" all name +79123456789.
    return digits in phone_digits or phone_digits[-10:] in digits


def _scrub(value: Any, email: str | None, phone: str | None) -> Any:
    """The filters with every string naming the person set to null (the tree kept)."""
    if isinstance(value, str):
        return None if _mentions(value, email, phone) else value
    if isinstance(value, dict):
        return {k: _scrub(v, email, phone) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, email, phone) for v in value]
    return value


def _scrub_free_text(filters: dict[str, Any], email: str | None, phone: str | None) -> Any:
    """Only `q` and `filter` are scrubbed: ids and dates elsewhere are nobody's data."""
    return {k: _scrub(v, email, phone) if k in _FREE_TEXT else v for k, v in filters.items()}


async def scrub_filters(session: AsyncSession, email: str | None, phone: str | None) -> int:
    """Null the erased e-mail / phone where an export's `q` or `filter` searched for it.

    Only free-text filters can hold them, so only exports with `q` or `filter` are read.
    Names are left: too common to tell this person's from anyone else's.
    """
    if not email and not phone:
        return 0
    text = cast(ContactExport.filters, Text)
    rows = await session.execute(
        select(ContactExport.id, ContactExport.filters).where(
            or_(text.like('%"q"%'), text.like('%"filter"%'))
        )
    )
    named = {
        export_id: scrubbed
        for export_id, filters in rows
        if (scrubbed := _scrub_free_text(filters, email, phone)) != filters
    }
    for export_id, scrubbed in named.items():
        await session.execute(
            update(ContactExport)
            .where(ContactExport.id == export_id)
            .values(filters=scrubbed)
            .execution_options(synchronize_session=False)
        )
    if named:
        audit = await session.scalars(
            select(AuditEntry).where(
                AuditEntry.record_type == RECORD_TYPE, AuditEntry.record_id.in_(list(named))
            )
        )
        for entry in audit:
            if entry.after is not None and "filters" in entry.after:
                entry.after = {**entry.after, "filters": named[entry.record_id]}
    return len(named)
