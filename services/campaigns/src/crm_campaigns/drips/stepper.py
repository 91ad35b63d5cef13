"""Moves enrolments through their steps: each step's effect and the new position commit together.

A tick claims due enrolments with one UPDATE (its subquery `FOR UPDATE SKIP
LOCKED` on PostgreSQL; SQLite has one writer at a time), works them through
the steps that are due, and commits the sends (outbox rows) with the new
positions in the same transaction. A crash before the commit leaves the
positions where they were and sends nothing; after it, the sends are in the
outbox and the positions past them. So a restart neither repeats nor skips a
step; the notifications service's key (`drip:<sequence>:<enrolment>:<step>`)
catches a relay's re-publish.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import LedgerRow
from crm_campaigns.drips.models import DripEnrolment, DripSend, DripSequence
from crm_campaigns.drips.schemas import (
    BranchStep,
    EnrolmentStatus,
    SendStep,
    SequenceStatus,
    Step,
    WaitStep,
)
from crm_campaigns.drips.sending import NotReplicatedYet, send_template
from crm_campaigns.drips.service import steps_of
from crm_kernel.db import Database, picked_once
from crm_kernel.settings import ServiceSettings

log = logging.getLogger(__name__)

BATCH = 100
# A send that cannot render (e.g. the template was deleted) is retried this much later.
RETRY_AFTER = timedelta(minutes=5)
# A contact whose first event is still on its way (a lead's drip may start first).
NOT_REPLICATED_RETRY = timedelta(seconds=5)


def send_key(sequence_id: str, enrolment_id: str, step: int) -> str:
    return f"drip:{sequence_id}:{enrolment_id}:{step}"


async def _response(
    session: AsyncSession, enrolment: DripEnrolment, branch: BranchStep
) -> datetime | None:
    """When the enrolment's latest send before the branch was opened (clicked), if it was."""
    previous = await session.scalar(
        select(DripSend)
        .where(DripSend.enrolment_id == enrolment.id, DripSend.step < enrolment.step)
        .order_by(DripSend.step.desc())
        .limit(1)
    )
    if previous is None or previous.status != "queued":
        return None
    column = LedgerRow.first_opened_at if branch.on == "opened" else LedgerRow.first_clicked_at
    found: datetime | None = await session.scalar(
        select(column).where(
            LedgerRow.campaign_id == previous.track_id,
            LedgerRow.contact_id == enrolment.contact_id,
        )
    )
    return found


async def _run_steps(
    session: AsyncSession,
    settings: ServiceSettings,
    sequence: DripSequence,
    steps: list[Step],
    enrolment: DripEnrolment,
    now: datetime,
) -> None:
    """Run every step that is due now; stop at a wait, an undecided branch, or the end."""
    # Branches jump forward only, so this ends within len(steps) moves.
    for _ in range(len(steps) + 1):
        if enrolment.step >= len(steps):
            enrolment.status = EnrolmentStatus.COMPLETED.value
            enrolment.finished_at = now
            return
        step = steps[enrolment.step]
        next_step: int | None = enrolment.step + 1
        if isinstance(step, WaitStep):
            until = enrolment.step_started_at + timedelta(seconds=step.total_seconds)
            if now < until:
                enrolment.due_at = until
                return
        elif isinstance(step, SendStep):
            await send_template(
                session,
                settings,
                sequence=sequence,
                enrolment=enrolment,
                template_id=str(step.template_id),
                key=send_key(sequence.id, enrolment.id, enrolment.step),
                now=now,
            )
        elif isinstance(step, BranchStep):
            fact = await _response(session, enrolment, step)
            until = enrolment.step_started_at + timedelta(seconds=step.within_seconds)
            if fact is None and now < until:
                enrolment.due_at = until  # an open/click arriving earlier wakes it
                return
            next_step = step.then_step if fact is not None else step.else_step
        else:  # exit
            next_step = None
        if next_step is None:
            next_step = len(steps)
        enrolment.step = next_step
        enrolment.step_started_at = now
        enrolment.due_at = now


async def advance_due(db: Database, settings: ServiceSettings, now: datetime | None = None) -> int:
    """Claim a batch of due enrolments of active sequences and advance them; returns how many."""
    now = now or datetime.now(UTC)
    running = select(DripSequence.id).where(
        DripSequence.status == SequenceStatus.ACTIVE, DripSequence.deleted_at.is_(None)
    )
    due = (
        select(DripEnrolment.id)
        .where(
            DripEnrolment.status == EnrolmentStatus.ACTIVE,
            DripEnrolment.due_at <= now,
            DripEnrolment.sequence_id.in_(running),
        )
        .order_by(DripEnrolment.due_at)
        .limit(BATCH)
    )
    async with db.session() as session:
        # A read first: the claim below takes SQLite's one write lock even when nothing
        # is due, twice a second, in the way of a campaign's sender, relay and consumers.
        if await session.scalar(due.limit(1)) is None:
            return 0
    due = due.with_for_update(skip_locked=True)
    async with db.transaction() as session:
        # The claim is the transaction's first statement: on SQLite it takes the write
        # lock at once; on PostgreSQL it locks the rows another replica then skips (and
        # re-checks them). By id alone: repeating the conditions here made SQLite walk
        # every due enrolment through the status index (see the notifications dispatcher).
        claimed = (
            await session.scalars(
                update(DripEnrolment)
                .where(DripEnrolment.id.in_(picked_once(due)))
                .values(updated_at=now)
                .returning(DripEnrolment.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        if not claimed:
            return 0
        enrolments = (
            await session.scalars(select(DripEnrolment).where(DripEnrolment.id.in_(claimed)))
        ).all()
        sequences = {
            s.id: s
            for s in (
                await session.scalars(
                    select(DripSequence).where(
                        DripSequence.id.in_({e.sequence_id for e in enrolments})
                    )
                )
            ).all()
        }
        steps = {sequence_id: steps_of(s) for sequence_id, s in sequences.items()}
        for enrolment in enrolments:
            sequence = sequences[enrolment.sequence_id]
            try:
                async with session.begin_nested():
                    await _run_steps(
                        session, settings, sequence, steps[sequence.id], enrolment, now
                    )
                    enrolment.last_error = None
            except NotReplicatedYet:
                await session.refresh(enrolment)
                enrolment.due_at = now + NOT_REPLICATED_RETRY
            except Exception as exc:
                # Only this enrolment's work is rolled back; it is tried again later.
                log.exception("drip %s: enrolment %s failed", sequence.id, enrolment.id)
                await session.refresh(enrolment)
                enrolment.last_error = f"{type(exc).__name__}: {exc}"[:500]
                enrolment.due_at = now + RETRY_AFTER
    return len(claimed)


async def wake_branches(session: AsyncSession, enrolment_id: str, now: datetime) -> None:
    """An open or click arrived: a branch waiting on it decides at the next tick."""
    await session.execute(
        update(DripEnrolment)
        .where(
            DripEnrolment.id == enrolment_id,
            DripEnrolment.status == EnrolmentStatus.ACTIVE,
            DripEnrolment.due_at > now,
        )
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    )
