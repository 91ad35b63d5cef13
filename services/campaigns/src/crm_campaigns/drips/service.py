"""Drip sequence use cases: define, activate, pause; enrol contacts; list enrolments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_campaigns.drips.models import DripEnrolment, DripSequence
from crm_campaigns.drips.schemas import (
    EnrolmentRead,
    EnrolmentStatus,
    SendStep,
    SequenceCreate,
    SequenceRead,
    SequenceStatus,
    SequenceUpdate,
    Step,
    Trigger,
    TriggerKind,
)
from crm_campaigns.templates.models import Template
from crm_kernel.auth import Principal
from crm_kernel.db import Database, insert_ignoring_duplicates
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, SortKey, paginate
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed, Unprocessable
from crm_kernel.versioning import check_version

STEPS = TypeAdapter(list[Step])
_ENROLMENTS = cast(Table, DripEnrolment.__table__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def steps_of(sequence: DripSequence) -> list[Step]:
    return STEPS.validate_python(sequence.steps)


def _trigger(sequence: DripSequence) -> Trigger:
    return Trigger(
        kind=TriggerKind(sequence.trigger),
        segment_id=sequence.trigger_segment_id,
        stage_id=sequence.trigger_stage_id,
    )


async def _read(session: AsyncSession, sequence: DripSequence) -> SequenceRead:
    by_status = dict(
        (
            await session.execute(
                select(DripEnrolment.status, func.count())
                .where(DripEnrolment.sequence_id == sequence.id)
                .group_by(DripEnrolment.status)
            )
        ).all()
    )
    return SequenceRead(
        id=sequence.id,
        name=sequence.name,
        status=SequenceStatus(sequence.status),
        trigger=_trigger(sequence),
        steps=steps_of(sequence),
        enrolled=sum(by_status.values()),
        active=by_status.get(EnrolmentStatus.ACTIVE, 0),
        completed=by_status.get(EnrolmentStatus.COMPLETED, 0),
        version=sequence.version,
        created_at=sequence.created_at,
        updated_at=sequence.updated_at,
    )


async def _sequence(session: AsyncSession, sequence_id: str) -> DripSequence:
    sequence = await session.get(DripSequence, sequence_id)
    if sequence is None or sequence.deleted_at is not None:
        raise NotFound("No such drip sequence.")
    return sequence


async def _check_templates(session: AsyncSession, steps: Sequence[Step]) -> None:
    for index, step in enumerate(steps):
        if not isinstance(step, SendStep):
            continue
        template = await session.get(Template, str(step.template_id))
        if template is None or template.deleted_at is not None:
            raise Unprocessable(
                "No such template.",
                errors=[
                    {
                        "field": f"steps.{index}.template_id",
                        "location": "body",
                        "message": "unknown template",
                    }
                ],
            )


def _store(sequence: DripSequence, trigger: Trigger | None, steps: list[Step] | None) -> None:
    if trigger is not None:
        sequence.trigger = trigger.kind.value
        sequence.trigger_segment_id = str(trigger.segment_id) if trigger.segment_id else None
        sequence.trigger_stage_id = str(trigger.stage_id) if trigger.stage_id else None
    if steps is not None:
        sequence.steps = STEPS.dump_python(steps, mode="json")


async def create_sequence(
    *, db: Database, principal: Principal, data: SequenceCreate
) -> SequenceRead:
    """A new sequence, as a draft (it enrols nobody until activated)."""
    now = utcnow()
    async with db.transaction() as session:
        await _check_templates(session, data.steps)
        sequence = DripSequence(
            id=str(new_id()),
            name=data.name,
            status=SequenceStatus.DRAFT.value,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        _store(sequence, data.trigger, data.steps)
        session.add(sequence)
        await session.flush()
        return await _read(session, sequence)


async def get_sequence(*, db: Database, sequence_id: str) -> SequenceRead:
    async with db.session() as session:
        return await _read(session, await _sequence(session, sequence_id))


async def list_sequences(*, db: Database, limit: int, cursor: str | None) -> Page[SequenceRead]:
    query = select(DripSequence).where(DripSequence.deleted_at.is_(None))
    async with db.session() as session:
        rows, next_cursor = await paginate(
            session, query, [SortKey(DripSequence.id, True)], limit=limit, cursor=cursor
        )
        items = [await _read(session, row[0]) for row in rows]
    return Page(items=items, next_cursor=next_cursor)


async def update_sequence(
    *, db: Database, sequence_id: str, data: SequenceUpdate, if_match: int | None
) -> SequenceRead:
    try:
        async with db.transaction() as session:
            sequence = await _sequence(session, sequence_id)
            check_version(sequence.version, if_match, data.version)
            if (data.trigger or data.steps) and sequence.status != SequenceStatus.DRAFT:
                raise Conflict("Trigger and steps change only while the sequence is a draft.")
            if data.steps is not None:
                await _check_templates(session, data.steps)
            if data.name is not None:
                sequence.name = data.name
            _store(sequence, data.trigger, data.steps)
            sequence.updated_at = utcnow()
            await session.flush()
            return await _read(session, sequence)
    except StaleDataError as exc:
        raise PreconditionFailed("The sequence was changed by someone else meanwhile.") from exc


async def set_status(*, db: Database, sequence_id: str, status: SequenceStatus) -> SequenceRead:
    """Activate (enrolling from now on, resuming held contacts) or pause (holding everyone)."""
    async with db.transaction() as session:
        sequence = await _sequence(session, sequence_id)
        if status is SequenceStatus.PAUSED and sequence.status == SequenceStatus.DRAFT:
            raise Conflict("A draft is not running; activate it first.")
        if sequence.status != status:
            sequence.status = status.value
            sequence.updated_at = utcnow()
            await session.flush()
        return await _read(session, sequence)


async def delete_sequence(*, db: Database, sequence_id: str) -> None:
    """Soft delete: enrolments stop where they are."""
    async with db.transaction() as session:
        sequence = await _sequence(session, sequence_id)
        sequence.deleted_at = sequence.updated_at = utcnow()
        sequence.status = SequenceStatus.PAUSED.value


async def list_enrolments(
    *,
    db: Database,
    sequence_id: str,
    status: EnrolmentStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[EnrolmentRead]:
    query = select(DripEnrolment).where(DripEnrolment.sequence_id == sequence_id)
    if status is not None:
        query = query.where(DripEnrolment.status == status.value)
    async with db.session() as session:
        await _sequence(session, sequence_id)
        rows, next_cursor = await paginate(
            session, query, [SortKey(DripEnrolment.id)], limit=limit, cursor=cursor
        )
    return Page(
        items=[EnrolmentRead.model_validate(row[0]) for row in rows], next_cursor=next_cursor
    )


# ---- enrolment -------------------------------------------------------------------------------


async def active_sequences(session: AsyncSession, trigger: TriggerKind, **target: Any) -> list[str]:
    """Ids of the active sequences with this trigger (and segment or stage)."""
    query = select(DripSequence.id).where(
        DripSequence.status == SequenceStatus.ACTIVE,
        DripSequence.deleted_at.is_(None),
        DripSequence.trigger == trigger.value,
    )
    if "stage_id" in target:
        query = query.where(DripSequence.trigger_stage_id == target["stage_id"])
    return list((await session.scalars(query)).all())


async def enrol(
    session: AsyncSession, sequence_ids: Sequence[str], contact_ids: Sequence[str], *, ref: str
) -> None:
    """Enrol contacts at step 0, due now; one enrolment per contact and sequence, ever."""
    now = utcnow()
    rows = [
        {
            "id": str(new_id()),
            "sequence_id": sequence_id,
            "contact_id": contact_id,
            "status": EnrolmentStatus.ACTIVE.value,
            "step": 0,
            "step_started_at": now,
            "due_at": now,
            "trigger_ref": ref[:100],
            "enrolled_at": now,
            "updated_at": now,
            "finished_at": None,
            "last_error": None,
        }
        for sequence_id in sequence_ids
        for contact_id in dict.fromkeys(contact_ids)
    ]
    for start in range(0, len(rows), 500):
        await insert_ignoring_duplicates(session, _ENROLMENTS, rows[start : start + 500])
