"""Claims that make a periodic job run once per slot however many replicas run it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from crm_reports.aggregates import dialect_insert
from crm_reports.models import JobClaim

CLAIMS = cast(Table, JobClaim.__table__)


async def claim(session: AsyncSession, job: str, slot: str) -> bool:
    """Claim (job, slot) in the caller's transaction; False if another run has it.

    On PostgreSQL a second replica's insert waits for the first one's commit and
    then finds the row; if the first rolls back, the second gets the claim.
    """
    statement = (
        dialect_insert(session)(CLAIMS)
        .values(job=job, slot=slot, claimed_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]
