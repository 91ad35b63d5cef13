"""Preference use cases: read and replace a contact's preferences; screen messages at send time."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.db import Database
from crm_notifications.models import Preference
from crm_notifications.preferences.schemas import PreferenceRead, PreferenceWrite

# Never refusable: a contact cannot opt out of an order's status or a security alert.
ALWAYS_SENT = frozenset({"transactional", "critical"})


async def get_preferences(*, db: Database, contact_id: str) -> PreferenceRead:
    async with db.session() as session:
        row = await session.get(Preference, contact_id)
    if row is None:
        return PreferenceRead(contact_id=contact_id)
    return PreferenceRead.model_validate(row)


async def put_preferences(
    *, db: Database, contact_id: str, data: PreferenceWrite
) -> PreferenceRead:
    async with db.transaction() as session:
        row = await session.get(Preference, contact_id)
        if row is None:
            row = Preference(contact_id=contact_id)
            session.add(row)
        row.opt_out = data.opt_out
        row.time_zone = data.time_zone
        row.quiet_start, row.quiet_end = data.quiet_start, data.quiet_end
        row.updated_at = datetime.now(UTC)
        return PreferenceRead.model_validate(row)


async def load(session: AsyncSession, contact_ids: set[str]) -> dict[str, Preference]:
    if not contact_ids:
        return {}
    query = select(Preference).where(Preference.contact_id.in_(contact_ids))
    return {row.contact_id: row for row in (await session.execute(query)).scalars()}


def refuses(preference: Preference | None, channel: str, category: str) -> bool:
    if preference is None or category in ALWAYS_SENT:
        return False
    return category in (preference.opt_out or {}).get(channel, [])
