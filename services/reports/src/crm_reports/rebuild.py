"""Rebuild the read models: empty them and replay every stream from its start.

    python -m crm_reports.rebuild          (what `make reports-rebuild` runs)
    POST /api/v1/reports/rebuild           (admins; the running service does it)

The read models are built only from events and the streams keep their history,
so the result equals what was built incrementally. Reports read partly rebuilt
figures until the replay has caught up.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from sqlalchemy import delete

from crm_kernel import inbox
from crm_kernel.app import runtime_of, service_handlers
from crm_kernel.auth import AdminUser
from crm_kernel.bus import Bus
from crm_kernel.consumer import Consumer
from crm_kernel.db import Database
from crm_reports.consumers import handlers
from crm_reports.models import Base
from crm_reports.settings import ReportsSettings

log = logging.getLogger(__name__)


async def rebuild(db: Database, consumer: Consumer) -> None:
    """Empty every read model and this consumer's inbox, then replay the streams from the start."""
    async with db.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(delete(table))
        await inbox.forget(session, consumer.name)
    await consumer.replay_from_start()
    log.info("read models emptied; replaying every stream from its start")


router = APIRouter(prefix="/reports", tags=["reports"])


@router.post("/rebuild", status_code=202)
async def rebuild_read_models(_: AdminUser, request: Request) -> dict[str, str]:
    """Empty the read models and replay every stream from its start (admins)."""
    runtime = runtime_of(request)
    await rebuild(runtime.db, runtime.consumers[0])
    return {"status": "replaying"}


async def main() -> None:
    settings = ReportsSettings()
    db = Database(settings.database_url)
    bus = await Bus.connect(settings.nats_url, name="crm-reports-rebuild")
    try:
        consumer = Consumer(db, bus, service_handlers(settings, handlers))
        await rebuild(db, consumer)
        print("Read models emptied; the reports service replays the streams from their start.")
    finally:
        await bus.close()
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
