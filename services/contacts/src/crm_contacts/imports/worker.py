"""The import worker: claims a queued job and runs it a batch at a time, restart-safe.

A job is claimed with a lease (a conditional UPDATE, so one replica wins). Each
batch commits its contacts, events and the job's progress together, after
renewing the lease; a replica that lost its lease stops. After a crash the
lease runs out and any replica resumes the job at `processed`: no row is
imported twice, none is lost. The batch that finishes a job also emits
`crm.contacts.import.finished` with the job's counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.common import utcnow
from crm_contacts.imports import csvfile
from crm_contacts.imports.importer import MAX_ERRORS, Importer
from crm_contacts.imports.models import ImportJob
from crm_contacts.imports.service import BATCH
from crm_kernel.app import Runtime
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.contacts import ImportFinished
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=30)
POLL_SECONDS = 0.5
SQLITE_PAUSE_SECONDS = 0.05
# Rows written per transaction: a commit (an fsync), the job's progress and the
# look-ups are per batch, so bigger is faster; on SQLite other writers wait for one
# batch (well under a second), far within their busy timeout.
WRITE_BATCH_FACTOR = 5


async def claim(db: Database, worker: str) -> str | None:
    """Take the oldest job that is queued or whose runner's lease ran out (one statement)."""
    now = utcnow()
    free = or_(ImportJob.lease_until.is_(None), ImportJob.lease_until < now)
    oldest = (
        select(ImportJob.id)
        .where(ImportJob.status.in_(("pending", "running")), free)
        .order_by(ImportJob.created_at)
        .limit(1)
        .scalar_subquery()
    )
    async with db.transaction() as session:
        taken = await session.scalar(
            update(ImportJob)
            .where(ImportJob.id == oldest, free)
            .values(status="running", claimed_by=worker, lease_until=now + LEASE)
            .returning(ImportJob.id)
            .execution_options(synchronize_session=False)
        )
    return taken


async def run_job(db: Database, job_id: str, worker: str, phone_region: str) -> None:
    """Run a claimed job from where it stands to the end (or until the lease is lost)."""
    async with db.session() as session:
        job = await session.get(ImportJob, job_id)
    if job is None:
        return
    header, rows = csvfile.split(job.content, job.delimiter)
    principal = Principal(
        user_id=job.actor_id, role=Role(job.actor_role), team_ids=tuple(job.actor_team_ids)
    )
    importer = Importer(
        principal, header, job.mapping, job.duplicate_policy, phone_region, db.is_sqlite
    )
    # The lease makes this replica the job's only writer, so its counters are kept here
    # and written with each batch (never re-reading the stored file).
    position, errors = job.processed, list(job.errors)
    counts = Counts(job.created, job.updated, job.skipped)
    size = BATCH * WRITE_BATCH_FACTOR

    while position < len(rows):
        batch = rows[position : position + size]
        # In a thread (the event loop keeps serving the relay and HTTP) and before the
        # transaction: the rows' own checks never hold SQLite's write lock. Not overlapped
        # with the writes: a CPU-bound thread makes every await of the loop wait for the GIL.
        validated = await asyncio.to_thread(importer.validate, batch)
        async with db.transaction() as session:
            # Renewing the lease first also locks the job row for this batch.
            renewed = await session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id, ImportJob.claimed_by == worker)
                .values(lease_until=utcnow() + LEASE)
                .execution_options(synchronize_session=False)
            )
            if not renewed.rowcount:  # type: ignore[attr-defined]
                log.warning("import %s: lease lost, another replica goes on", job_id)
                return
            outcome = await importer.apply(session, validated, write=True)
            position += len(batch)
            errors.extend(outcome.errors[: max(0, MAX_ERRORS - len(errors))])
            finished = position >= len(rows)
            counts.created += outcome.created
            counts.updated += outcome.updated
            counts.skipped += outcome.skipped
            await session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id)
                .values(
                    processed=position,
                    created=counts.created,
                    updated=counts.updated,
                    skipped=counts.skipped,
                    errors=errors,
                    status="done" if finished else "running",
                    finished_at=utcnow() if finished else None,
                    lease_until=None if finished else ImportJob.lease_until,
                )
                .execution_options(synchronize_session=False)
            )
            if finished:
                await _announce(session, job, position, counts)
        if db.is_sqlite:
            # SQLite has one write lock and no queue for it: without a pause between
            # batches the relay and the scheduler can starve past their busy timeout.
            await asyncio.sleep(SQLITE_PAUSE_SECONDS)
    if not rows:
        async with db.transaction() as session:
            done = await session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id, ImportJob.claimed_by == worker)
                .values(status="done", finished_at=utcnow(), lease_until=None)
            )
            if done.rowcount:  # type: ignore[attr-defined]
                await _announce(session, job, 0, counts)


@dataclass
class Counts:
    created: int
    updated: int
    skipped: int


async def _announce(session: AsyncSession, job: ImportJob, processed: int, counts: Counts) -> None:
    """`import.finished`, in the transaction that marks the job done (so exactly once)."""
    event = ImportFinished(
        job_id=job.id,
        actor_id=job.actor_id,
        total=job.total,
        created=counts.created,
        updated=counts.updated,
        skipped=counts.skipped,
        error_count=processed - counts.created - counts.updated - counts.skipped,
        finished_at=utcnow().isoformat(),
    )
    await add_event(session, event, subject=job.id, actor=job.actor_id)


# Per database (one per app): set when a job is queued through this replica, so its
# worker starts at once instead of at its next poll (other replicas poll).
_queued: weakref.WeakKeyDictionary[Database, asyncio.Event] = weakref.WeakKeyDictionary()


def _queued_signal(db: Database) -> asyncio.Event:
    return _queued.setdefault(db, asyncio.Event())


def job_queued(db: Database) -> None:
    """Wake this replica's worker for a job just queued."""
    _queued_signal(db).set()


async def run(runtime: Runtime) -> None:
    """Claim and run jobs for the life of the service."""
    worker = str(new_id())
    region: str = getattr(runtime.settings, "phone_region", "RU")
    queued = _queued_signal(runtime.db)
    while True:
        queued.clear()
        try:
            job_id = await claim(runtime.db, worker)
            if job_id is not None:
                await run_job(runtime.db, job_id, worker, region)
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("import worker: a job failed; it is retried when its lease runs out")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queued.wait(), POLL_SECONDS)


async def start(runtime: Runtime) -> None:
    runtime.spawn(run(runtime), "contacts-import-worker")
