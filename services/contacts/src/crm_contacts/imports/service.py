"""Import use cases: check a file, dry-run it, or queue it as a job; show a job's progress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defer

from crm_contacts.common import utcnow
from crm_contacts.imports import csvfile
from crm_contacts.imports.importer import Importer, Outcome, resolve_mapping
from crm_contacts.imports.models import ImportJob
from crm_contacts.imports.schemas import DryRunReport, ImportRead
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.problems import NotFound

# Rows validated (and written) per transaction.
BATCH = 1000


def to_read(job: ImportJob, error_count: int | None = None) -> ImportRead:
    return ImportRead.model_validate(
        {
            **{
                name: getattr(job, name)
                for name in ImportRead.model_fields
                if name != "error_count"
            },
            "errors": job.errors[:1000],
            "error_count": error_count if error_count is not None else _error_count(job),
        }
    )


def _error_count(job: ImportJob) -> int:
    # The rows neither created, updated nor skipped were errors.
    return job.processed - job.created - job.updated - job.skipped


def merge(total: Outcome, batch: Outcome) -> None:
    total.created += batch.created
    total.updated += batch.updated
    total.skipped += batch.skipped
    total.error_count += batch.error_count
    total.errors.extend(batch.errors[: max(0, 1000 - len(total.errors))])


async def dry_run(
    *,
    db: Database,
    principal: Principal,
    file: csvfile.CsvFile,
    mapping: Mapping[str, str] | None,
    policy: str,
    phone_region: str,
) -> DryRunReport:
    """Every row checked as a real run would, with each bad row's line, field and reason."""
    columns = resolve_mapping(file.header, mapping)
    importer = Importer(principal, file.header, columns, policy, phone_region, db.is_sqlite)
    outcome = Outcome()
    async with db.session() as session:
        for start in range(0, len(file.rows), BATCH):
            merge(
                outcome, await importer.run(session, file.rows[start : start + BATCH], write=False)
            )
    return DryRunReport(
        encoding=file.encoding,
        delimiter=file.delimiter,
        mapping=columns,
        total=len(file.rows),
        created=outcome.created,
        updated=outcome.updated,
        skipped=outcome.skipped,
        errors=outcome.errors,
        error_count=outcome.error_count,
    )


async def queue(
    *,
    db: Database,
    principal: Principal,
    file: csvfile.CsvFile,
    mapping: Mapping[str, str] | None,
    policy: str,
) -> ImportRead:
    """Store the file as a job for the import worker (any replica) to run."""
    columns = resolve_mapping(file.header, mapping)
    job = ImportJob(
        id=str(new_id()),
        actor_id=principal.user_id,
        actor_role=principal.role.value,
        actor_team_ids=list(principal.team_ids),
        status="pending",
        duplicate_policy=policy,
        mapping=columns,
        content=file.text,
        delimiter=file.delimiter,
        encoding=file.encoding,
        total=len(file.rows),
        processed=0,
        created=0,
        updated=0,
        skipped=0,
        errors=[],
        created_at=utcnow(),
    )
    async with db.transaction() as session:
        session.add(job)
    return to_read(job)


async def get_job(*, db: Database, principal: Principal, job_id: str) -> ImportRead:
    """A job's progress, for whoever started it and for admins (404 for anyone else)."""
    # Not the stored file: a client polls this several times a second while it runs.
    query: Any = select(ImportJob).options(defer(ImportJob.content)).where(ImportJob.id == job_id)
    if not principal.is_admin:
        query = query.where(ImportJob.actor_id == principal.user_id)
    async with db.session() as session:
        job = (await session.scalars(query)).first()
    if job is None:
        raise NotFound(f"No import {job_id}.")
    return to_read(job)
