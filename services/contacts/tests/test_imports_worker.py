"""The import worker: one replica per job (a lease), and a takeover that resumes without repeats."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

import crm_contacts
from crm_contacts.common import utcnow
from crm_contacts.contacts.models import Contact
from crm_contacts.imports import csvfile, service, worker
from crm_contacts.imports.models import ImportJob
from crm_kernel.auth import Principal, Role
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations
from crm_kernel.testing import wait_until

ADMIN = Principal(user_id="00000000-0000-4000-8000-000000000001", role=Role.ADMIN)


async def test_a_lost_lease_hands_the_job_over_and_no_row_is_imported_twice(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "BATCH", 2)
    db = Database(db_url)
    try:
        await migrate(db, service_migrations(crm_contacts.__file__))
        rows = "".join(f"Person{i},p{i}@example.com\n" for i in range(400))
        file = csvfile.read(f"first_name,email\n{rows}".encode())
        job = await service.queue(db=db, principal=ADMIN, file=file, mapping=None, policy="skip")
        job_id = str(job.id)

        assert await worker.claim(db, "replica-a") == job_id
        assert await worker.claim(db, "replica-b") is None  # leased to replica A
        first = asyncio.create_task(worker.run_job(db, job_id, "replica-a", "RU"))

        async def progressed() -> bool:
            async with db.session() as session:
                done = await session.scalar(
                    select(ImportJob.processed).where(ImportJob.id == job_id)
                )
            return bool(done)

        await wait_until(progressed, timeout=30, message="replica A to commit a batch")
        # Replica A dies mid-job (its open batch rolls back); once its lease runs out, B takes over.
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        async with db.transaction() as session:
            await session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
        assert await worker.claim(db, "replica-b") == job_id
        async with db.session() as session:
            resumed_at = await session.scalar(
                select(ImportJob.processed).where(ImportJob.id == job_id)
            )
        # Had A only stalled, its next batch finds the lease gone and does nothing.
        await worker.run_job(db, job_id, "replica-a", "RU")
        async with db.session() as session:
            assert (
                await session.scalar(select(ImportJob.processed).where(ImportJob.id == job_id))
                == resumed_at
            )
        await worker.run_job(db, job_id, "replica-b", "RU")

        async with db.session() as session:
            stored = await session.get(ImportJob, job_id)
            emails = (
                await session.execute(select(Contact.email, func.count()).group_by(Contact.email))
            ).all()
        assert stored is not None and stored.status == "done"
        assert stored.processed == stored.total == 400 and stored.created == 400
        assert len(emails) == 400 and all(count == 1 for _, count in emails)
    finally:
        await db.dispose()
