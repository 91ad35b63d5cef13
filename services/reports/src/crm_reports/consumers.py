"""Handlers that keep the read models from other services' events (idempotent, order-proof).

State events (contacts, deals, activities, tasks, requests, campaigns, marketing
events) carry the whole record and its `version`: the newest version wins
whatever the arrival order. Facts (leads, message facts, participants, stage
stays) are keyed so a repeat is a no-op and the earliest time is kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts import campaigns as cc
from crm_kernel.contracts import contacts as kc
from crm_kernel.contracts.deals import (
    DealCreated,
    DealLost,
    DealOwnerChanged,
    DealReopened,
    DealStageChanged,
    DealStalled,
    DealState,
    DealUpdated,
    DealWon,
    PipelineCreated,
    PipelineState,
    PipelineUpdated,
)
from crm_kernel.db import insert_ignoring_duplicates, upsert, upsert_if_newer
from crm_kernel.events import IntegrationEvent
from crm_reports import freshness
from crm_reports.aggregates import (
    add_contributions,
    amount_band,
    apply_delta,
    dialect_insert,
    lock_deal,
)
from crm_reports.funnel.facts import aggregates_lock, deal_part, follow_owner, recompute_pipeline
from crm_reports.models import (
    ActivityFact,
    CampaignFact,
    CampaignVariant,
    ContactFact,
    ContactStage,
    DealFact,
    LeadFact,
    MarketingEventFact,
    MessageFactRow,
    Participant,
    RequestFact,
    StageFact,
    StageStay,
    TaskFact,
)

handlers = Handlers("reports")


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


CONTACTS, CONTACT_STAGES = _table(ContactFact), _table(ContactStage)
DEALS, STAGES, STAYS = _table(DealFact), _table(StageFact), _table(StageStay)
ACTIVITIES, TASKS, REQUESTS, LEADS = (
    _table(ActivityFact),
    _table(TaskFact),
    _table(RequestFact),
    _table(LeadFact),
)
CAMPAIGNS, VARIANTS, FACTS = _table(CampaignFact), _table(CampaignVariant), _table(MessageFactRow)
MARKETING_EVENTS, PARTICIPANTS = _table(MarketingEventFact), _table(Participant)

Handler = Callable[[list[Any], BatchContext], Awaitable[None]]
# The version of a merged-away contact's tombstone: newer than any real version.
GONE = 2**31 - 1


def utc(value: str | None) -> datetime | None:
    """An ISO 8601 time from an event as an aware UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def at(value: str) -> datetime:
    parsed = utc(value)
    assert parsed is not None
    return parsed


def on_each(*schemas: type[IntegrationEvent]) -> Callable[[Handler], Handler]:
    """Register a batch handler for several event types; each batch feeds the freshness metric."""

    def register(fn: Handler) -> Handler:
        async def handle(events: list[Any], ctx: BatchContext) -> None:
            await fn(events, ctx)
            freshness.observe(ctx.envelopes)

        for schema in schemas:
            handlers.on_batch(schema)(handle)
        return fn

    return register


async def keep_earliest(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    time: str,
    count: str | None = None,
) -> None:
    """Insert facts; on a repeat keep the earliest time (and add to `count` if given)."""
    insert = dialect_insert(session)
    for row in rows:
        statement = insert(table).values(**row)
        changes: dict[str, Any] = {
            time: case(
                (statement.excluded[time] < table.c[time], statement.excluded[time]),
                else_=table.c[time],
            )
        }
        if count:
            changes[count] = table.c[count] + statement.excluded[count]
        if "variant_id" in row:
            changes["variant_id"] = func.coalesce(table.c.variant_id, statement.excluded.variant_id)
        await session.execute(
            statement.on_conflict_do_update(index_elements=[table.c[k] for k in key], set_=changes)
        )


# -- contacts ---------------------------------------------------------------


@on_each(
    kc.ContactCreated,
    kc.ContactUpdated,
    kc.ContactOwnerChanged,
    kc.ContactDeleted,
    kc.ContactRestored,
    kc.ContactMerged,
)
async def on_contacts_changed(events: list[kc.ContactState], ctx: BatchContext) -> None:
    for e in events:
        row = {
            "id": e.id,
            "owner_id": e.owner_id,
            "created_at": at(e.created_at),
            "lifecycle_stage": e.lifecycle_stage,
            "deleted_at": utc(e.deleted_at),
            "version": e.version,
        }
        await upsert_if_newer(ctx.session, CONTACTS, row, key=["id"], version="version")
        history = {
            "contact_id": e.id,
            "version": e.version,
            "at": at(e.updated_at),
            "owner_id": e.owner_id,
            "lifecycle_stage": e.lifecycle_stage,
            "deleted": e.deleted_at is not None,
        }
        await insert_ignoring_duplicates(ctx.session, CONTACT_STAGES, [history])
        if isinstance(e, kc.ContactMerged):
            # The merged contact is gone for good: a tombstone newer than any of its versions,
            # so its own events arriving late (or before this one) never bring it back.
            tombstone = {**row, "id": e.merged_id, "deleted_at": at(e.updated_at), "version": GONE}
            await upsert(
                ctx.session,
                CONTACTS,
                tombstone,
                key=["id"],
                update=[c for c in tombstone if c != "id"],
            )
            await insert_ignoring_duplicates(
                ctx.session,
                CONTACT_STAGES,
                [{**history, "contact_id": e.merged_id, "version": GONE, "deleted": True}],
            )


@on_each(kc.ActivityCreated, kc.ActivityUpdated, kc.ActivityDeleted)
async def on_activities_changed(events: list[kc.ActivityState], ctx: BatchContext) -> None:
    for e in events:
        row = {
            "id": e.id,
            "contact_id": e.contact_id,
            "deal_id": e.deal_id,
            "activity_type": e.activity_type,
            "author_id": e.author_id,
            "occurred_at": at(e.occurred_at),
            "deleted_at": utc(e.deleted_at),
            "version": e.version,
        }
        await upsert_if_newer(ctx.session, ACTIVITIES, row, key=["id"], version="version")


@on_each(
    kc.TaskCreated,
    kc.TaskUpdated,
    kc.TaskCompleted,
    kc.TaskDeleted,
    kc.TaskDueSoon,
    kc.TaskOverdue,
)
async def on_tasks_changed(events: list[kc.TaskState], ctx: BatchContext) -> None:
    for e in events:
        row = {
            "id": e.id,
            "assignee_id": e.assignee_id,
            "contact_id": e.contact_id,
            "deal_id": e.deal_id,
            "status": e.status,
            "due_at": at(e.due_at),
            "completed_at": utc(e.completed_at),
            "deleted_at": utc(e.deleted_at),
            "version": e.version,
        }
        await upsert_if_newer(ctx.session, TASKS, row, key=["id"], version="version")


@on_each(kc.RequestOpened, kc.RequestUpdated, kc.RequestResolved, kc.RequestReopened)
async def on_requests_changed(events: list[kc.RequestState], ctx: BatchContext) -> None:
    for e in events:
        row = {
            "id": e.id,
            "contact_id": e.contact_id,
            "assignee_id": e.assignee_id,
            "status": e.status,
            "opened_at": at(e.opened_at),
            "resolved_at": utc(e.resolved_at) if e.status == "resolved" else None,
            "resolution_seconds": e.resolution_seconds if e.status == "resolved" else None,
            "version": e.version,
        }
        await upsert_if_newer(ctx.session, REQUESTS, row, key=["id"], version="version")


@on_each(kc.LeadReceived)
async def on_leads_received(events: list[kc.LeadReceived], ctx: BatchContext) -> None:
    await insert_ignoring_duplicates(
        ctx.session,
        LEADS,
        [
            {
                "id": e.id,
                "contact_id": e.contact_id,
                "owner_id": e.owner_id,
                "source": e.source,
                "is_new_contact": e.is_new_contact,
                "utm_campaign": e.utm_campaign,
                "received_at": at(e.received_at),
            }
            for e in events
        ],
    )


# -- deals -----------------------------------------------------------------


def days(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() / 86400 if end is not None else None


def deal_row(deal: DealState) -> dict[str, Any]:
    amount = Decimal(deal.amount) if deal.amount is not None else None
    created, closed = at(deal.created_at), utc(deal.closed_at)
    return {
        "id": deal.id,
        "owner_id": deal.owner_id,
        "pipeline_id": deal.pipeline_id,
        "stage_id": deal.stage_id,
        "status": deal.status,
        "amount": amount,
        "currency": deal.currency,
        "created_at": created,
        "closed_at": closed,
        "version": deal.version,
        "contact_id": deal.contact_id,
        "source": deal.source,
        "source_campaign_id": deal.source_campaign_id,
        "expected_close_date": date.fromisoformat(deal.expected_close_date[:10])
        if deal.expected_close_date
        else None,
        "stage_entered_at": utc(deal.stage_entered_at),
        "amount_band": amount_band(amount, deal.currency),
        "cycle_days": days(created, closed) if deal.status == "won" else None,
    }


@on_each(
    DealCreated,
    DealUpdated,
    DealStageChanged,
    DealWon,
    DealLost,
    DealReopened,
    DealOwnerChanged,
    DealStalled,
)
async def on_deals_changed(events: list[DealState], ctx: BatchContext) -> None:
    """Every deal event carries the whole state: keep the newest version, and the aggregates with it.

    The deal's funnel part is taken away before its row and stays change and added
    back after, under the deal's lock.
    """
    await aggregates_lock(ctx.session)
    for deal in events:
        row = deal_row(deal)
        old = await lock_deal(ctx.session, deal.id)
        before = await deal_part(ctx.session, deal.id, -1)
        if old is None or old["version"] < deal.version:
            await upsert_if_newer(ctx.session, DEALS, row, key=["id"], version="version")
            await apply_delta(ctx.session, old, row)
        if isinstance(deal, DealCreated | DealStageChanged):
            await record_stays(ctx, deal)
        await follow_owner(ctx.session, deal.id)
        await add_contributions(ctx.session, before, await deal_part(ctx.session, deal.id, 1))


@on_each(PipelineCreated, PipelineUpdated)
async def on_pipelines_changed(events: list[PipelineState], ctx: BatchContext) -> None:
    """Stages by newest pipeline version; the funnel facts follow a change of position or kind."""
    await aggregates_lock(ctx.session)
    for pipeline in events:
        layout = select(STAGES.c.id, STAGES.c.position, STAGES.c.kind).where(
            STAGES.c.pipeline_id == pipeline.id
        )
        before = set((await ctx.session.execute(layout)).all())
        for stage in pipeline.stages:
            row = {
                "id": stage.id,
                "pipeline_id": pipeline.id,
                "name": stage.name,
                "position": stage.position,
                "probability": Decimal(stage.probability),
                "kind": stage.kind,
                "version": pipeline.version,
            }
            await upsert_if_newer(ctx.session, STAGES, row, key=["id"], version="version")
        if set((await ctx.session.execute(layout)).all()) != before:
            await recompute_pipeline(ctx.session, pipeline.id)


async def record_stays(ctx: BatchContext, event: DealCreated | DealStageChanged) -> None:
    """A transition opens a stay in its `to` stage and closes the one in its `from` stage.

    `stage_changed` is published for every move (win, loss and reopen included),
    so `created` and `stage_changed` together carry every stay exactly once.
    """
    move = event.transition
    opened = {
        "deal_id": event.id,
        "stage_id": move.to_stage_id,
        "pipeline_id": move.pipeline_id,
        "entered_at": at(move.entered_at),
        "left_at": None,
        "days": None,
    }
    await insert_ignoring_duplicates(ctx.session, STAYS, [opened])
    if move.from_stage_id and move.from_entered_at and move.left_at:
        closed = {
            "deal_id": event.id,
            "stage_id": move.from_stage_id,
            "pipeline_id": move.pipeline_id,
            "entered_at": at(move.from_entered_at),
            "left_at": at(move.left_at),
            "days": days(at(move.from_entered_at), at(move.left_at)),
        }
        await upsert(
            ctx.session,
            STAYS,
            closed,
            key=["deal_id", "stage_id", "entered_at"],
            update=["left_at", "days"],
        )


# -- campaigns and marketing events ----------------------------------------


@on_each(cc.CampaignCreated, cc.CampaignUpdated, cc.CampaignProgress, cc.CampaignSent)
async def on_campaigns_changed(events: list[cc.CampaignState], ctx: BatchContext) -> None:
    for e in events:
        row = {
            "id": e.id,
            "name": e.name,
            "channel": e.channel,
            "status": e.status,
            "cost": Decimal(e.cost) if e.cost is not None else None,
            "currency": e.currency,
            "attribution_days": e.attribution_days,
            "marketing_event_id": e.marketing_event_id,
            "audience": e.audience,
            "started_at": utc(e.started_at),
            "created_by": e.created_by,
            "created_at": at(e.created_at),
            "version": e.version,
        }
        await upsert_if_newer(ctx.session, CAMPAIGNS, row, key=["id"], version="version")
        for variant in e.variants:
            await upsert_if_newer(
                ctx.session,
                VARIANTS,
                {
                    "campaign_id": e.id,
                    "variant_id": variant.id,
                    "name": variant.name,
                    "version": e.version,
                },
                key=["campaign_id", "variant_id"],
                version="version",
            )


FACT_KINDS: dict[type[cc.MessageFact], str] = {
    cc.MessageSent: "sent",
    cc.MessageDelivered: "delivered",
    cc.MessageFailed: "failed",
    cc.MessageBounced: "bounced",
    cc.MessageComplained: "complained",
    cc.MessageOpened: "opened",
    cc.MessageClicked: "clicked",
}


@on_each(*FACT_KINDS)
async def on_message_facts(events: list[cc.MessageFact], ctx: BatchContext) -> None:
    rows = [
        {
            "campaign_id": e.campaign_id,
            "contact_id": e.contact_id,
            "kind": FACT_KINDS[type(e)],
            "variant_id": e.variant_id,
            "first_at": at(e.at),
            "total": 1,
        }
        for e in events
    ]
    await keep_earliest(
        ctx.session,
        FACTS,
        rows,
        key=["campaign_id", "contact_id", "kind"],
        time="first_at",
        count="total",
    )


@on_each(cc.RecipientUnsubscribed)
async def on_recipients_unsubscribed(
    events: list[cc.RecipientUnsubscribed], ctx: BatchContext
) -> None:
    rows = [
        {
            "campaign_id": e.campaign_id,
            "contact_id": e.contact_id,
            "kind": "unsubscribed",
            "variant_id": None,
            "first_at": at(e.at),
            "total": 1,
        }
        for e in events
        if e.campaign_id
    ]
    await keep_earliest(
        ctx.session,
        FACTS,
        rows,
        key=["campaign_id", "contact_id", "kind"],
        time="first_at",
        count="total",
    )


@on_each(cc.MarketingEventCreated, cc.MarketingEventUpdated)
async def on_marketing_events_changed(
    events: list[cc.MarketingEventState], ctx: BatchContext
) -> None:
    for e in events:
        row = {
            "id": e.id,
            "name": e.name,
            "kind": e.kind,
            "starts_at": at(e.starts_at),
            "invited": e.invited,
            "registered": e.registered,
            "attended": e.attended,
            "version": e.version,
        }
        await upsert_if_newer(ctx.session, MARKETING_EVENTS, row, key=["id"], version="version")


PARTICIPANT_STEPS: dict[type[cc.ParticipantChanged], str] = {
    cc.ParticipantInvited: "invited",
    cc.ParticipantRegistered: "registered",
    cc.ParticipantAttended: "attended",
}


@on_each(*PARTICIPANT_STEPS)
async def on_participants_changed(events: list[cc.ParticipantChanged], ctx: BatchContext) -> None:
    rows = [
        {
            "event_id": e.event_id,
            "contact_id": e.contact_id,
            "step": PARTICIPANT_STEPS[type(e)],
            "at": at(e.at),
        }
        for e in events
    ]
    await keep_earliest(
        ctx.session, PARTICIPANTS, rows, key=["event_id", "contact_id", "step"], time="at"
    )
