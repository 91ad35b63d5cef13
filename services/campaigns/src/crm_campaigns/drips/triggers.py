"""What enrols contacts: a lead received, a deal entering a stage, joining a segment.

Leads and deal moves arrive as events (the drips' own durable consumer).
Joining a segment is found by evaluating each active sequence's segment on the
recipient directory every few seconds (static and dynamic segments alike): a
member not seen before has joined. The members present when the sequence is
first evaluated are recorded, not enrolled: the trigger is joining, not being there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.drips import service
from crm_campaigns.drips.models import DripSegmentMember, DripSend, DripSequence
from crm_campaigns.drips.schemas import SequenceStatus, TriggerKind
from crm_campaigns.drips.stepper import wake_branches
from crm_campaigns.events.consumers import consumer_hook
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.recipients.segments import audience_query
from crm_kernel.consumer import EventContext, Handlers
from crm_kernel.contracts.campaigns import MessageClicked, MessageFact, MessageOpened
from crm_kernel.contracts.contacts import LeadReceived
from crm_kernel.contracts.deals import DealCreated, DealStageChanged
from crm_kernel.db import Database, insert_ignoring_duplicates

_SEEN = cast(Table, DripSegmentMember.__table__)
CONSUMER = "campaigns-drips"


def register(handlers: Handlers) -> None:
    """The drips' event triggers, and opens/clicks that may decide a waiting branch."""

    @handlers.on(LeadReceived)
    async def on_lead_received(event: LeadReceived, ctx: EventContext) -> None:
        sequences = await service.active_sequences(ctx.session, TriggerKind.LEAD_RECEIVED)
        await service.enrol(ctx.session, sequences, [event.contact_id], ref=f"lead:{event.id}")

    async def on_stage_entered(event: DealCreated | DealStageChanged, ctx: EventContext) -> None:
        if not event.contact_id:
            return
        sequences = await service.active_sequences(
            ctx.session, TriggerKind.DEAL_STAGE_ENTERED, stage_id=event.transition.to_stage_id
        )
        await service.enrol(ctx.session, sequences, [event.contact_id], ref=f"deal:{event.id}")

    handlers.on(DealCreated)(on_stage_entered)
    handlers.on(DealStageChanged)(on_stage_entered)

    async def on_response(event: MessageFact, ctx: EventContext) -> None:
        enrolment_ids = await ctx.session.scalars(
            select(DripSend.enrolment_id).where(
                DripSend.track_id == event.campaign_id, DripSend.contact_id == event.contact_id
            )
        )
        for enrolment_id in enrolment_ids.all():
            await wake_branches(ctx.session, enrolment_id, datetime.now(UTC))

    handlers.on(MessageOpened)(on_response)
    handlers.on(MessageClicked)(on_response)


async def _evaluate(session: AsyncSession, sequence_id: str, now: datetime) -> int:
    """Record the sequence's segment members; enrol the new ones unless this is the baseline."""
    claimed = await session.execute(
        update(DripSequence)
        .where(DripSequence.id == sequence_id, DripSequence.status == SequenceStatus.ACTIVE)
        .values(trigger=DripSequence.trigger)  # a no-op write: one evaluation at a time
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return 0
    sequence = await session.get(DripSequence, sequence_id)
    if sequence is None or sequence.trigger_segment_id is None:
        return 0
    audience = await audience_query(session, [sequence.trigger_segment_id], [])
    seen = select(DripSegmentMember.contact_id).where(DripSegmentMember.sequence_id == sequence_id)
    joined = list(
        (
            await session.scalars(
                audience.with_only_columns(Recipient.id).where(Recipient.id.not_in(seen))
            )
        ).all()
    )
    for start in range(0, len(joined), 500):
        await insert_ignoring_duplicates(
            session,
            _SEEN,
            [
                {"sequence_id": sequence_id, "contact_id": c, "seen_at": now}
                for c in joined[start : start + 500]
            ],
        )
    if sequence.segment_baseline_at is None:
        await session.execute(
            update(DripSequence)
            .where(DripSequence.id == sequence_id)
            .values(segment_baseline_at=now)
            .execution_options(synchronize_session=False)
        )
        return 0
    await service.enrol(
        session, [sequence_id], joined, ref=f"segment:{sequence.trigger_segment_id}"
    )
    return len(joined)


async def evaluate_segments(db: Database) -> int:
    """One pass over the active segment_joined sequences; returns how many contacts joined."""
    async with db.session() as session:
        sequence_ids = list(
            (
                await session.scalars(
                    select(DripSequence.id).where(
                        DripSequence.status == SequenceStatus.ACTIVE,
                        DripSequence.deleted_at.is_(None),
                        DripSequence.trigger == TriggerKind.SEGMENT_JOINED,
                    )
                )
            ).all()
        )
    return sum([await evaluate_sequence(db, sequence_id) for sequence_id in sequence_ids])


async def evaluate_sequence(db: Database, sequence_id: str) -> int:
    """Evaluate one sequence now (at activation: its baseline is recorded at once)."""
    async with db.transaction() as session:
        return await _evaluate(session, sequence_id, datetime.now(UTC))


handlers = Handlers(CONSUMER)
register(handlers)
# Start-up hook of the service: the drips' consumer.
start = consumer_hook(handlers)
