"""Exports expire: a pruner deletes each stored CSV `CRM_CONTACTS_EXPORT_RETENTION_HOURS`
after it was made (the record and its audit row stay; the download answers 410).

Downloads check the age themselves, so the pruner's interval only bounds how long
expired bytes stay in the database. Bounded batches keep each transaction short.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from crm_contacts.common import utcnow
from crm_contacts.exports.models import ContactExport
from crm_contacts.exports.service import purge
from crm_kernel.app import Runtime, repeat
from crm_kernel.db import Database

BATCH = 100
INTERVAL_SECONDS = 300.0


async def purge_expired(db: Database, retention: timedelta, now: datetime | None = None) -> int:
    """Delete the CSV of up to BATCH expired exports; returns how many."""
    now = now or utcnow()
    due = (
        select(ContactExport.id)
        .where(ContactExport.purged_at.is_(None), ContactExport.created_at <= now - retention)
        .order_by(ContactExport.created_at)
        .limit(BATCH)
    )
    async with db.transaction() as session:
        ids = list(await session.scalars(due))
        return await purge(session, ids, now) if ids else 0


async def start(runtime: Runtime) -> None:
    """Start hook: prune for the life of the service."""
    hours = float(getattr(runtime.settings, "export_retention_hours", 24.0))
    retention = timedelta(hours=hours)
    runtime.spawn(
        repeat(
            lambda: purge_expired(runtime.db, retention),
            interval=INTERVAL_SECONDS,
            batch=BATCH,
            name="export pruning",
        ),
        "export-pruner",
    )
