"""Handlers that keep the read models from other services' events (idempotent, order-proof)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table

from crm_kernel.consumer import BatchContext, Handlers
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.contracts.deals import (
    DealCreated,
    DealLost,
    DealOwnerChanged,
    DealReopened,
    DealStageChanged,
    DealState,
    DealUpdated,
    DealWon,
    PipelineCreated,
    PipelineState,
    PipelineUpdated,
)
from crm_kernel.db import insert_ignoring_duplicates, upsert, upsert_if_newer
from crm_reports.models import ContactFact, DealFact, StageFact, StageStay

handlers = Handlers("reports")
CONTACTS = cast(Table, ContactFact.__table__)
DEALS = cast(Table, DealFact.__table__)
STAGES = cast(Table, StageFact.__table__)
STAYS = cast(Table, StageStay.__table__)


@handlers.on_batch(ContactCreated)
async def on_contacts_created(events: list[ContactCreated], ctx: BatchContext) -> None:
    await insert_ignoring_duplicates(
        ctx.session,
        CONTACTS,
        [
            {"id": e.id, "owner_id": e.owner_id, "created_at": datetime.fromisoformat(e.created_at)}
            for e in events
        ],
    )


def _deal_row(deal: DealState) -> dict[str, Any]:
    return {
        "id": deal.id,
        "owner_id": deal.owner_id,
        "pipeline_id": deal.pipeline_id,
        "stage_id": deal.stage_id,
        "status": deal.status,
        "amount": Decimal(deal.amount) if deal.amount is not None else None,
        "currency": deal.currency,
        "created_at": datetime.fromisoformat(deal.created_at),
        "closed_at": datetime.fromisoformat(deal.closed_at) if deal.closed_at else None,
        "version": deal.version,
    }


async def on_deals_changed(events: list[Any], ctx: BatchContext) -> None:
    """Every deal event carries the whole state: keep the newest version (events may come out of order)."""
    for deal in events:
        await upsert_if_newer(ctx.session, DEALS, _deal_row(deal), key=["id"], version="version")
        if isinstance(deal, DealCreated | DealStageChanged):
            await record_stays(ctx, deal)


for _deal_event in (
    DealCreated,
    DealUpdated,
    DealStageChanged,
    DealWon,
    DealLost,
    DealReopened,
    DealOwnerChanged,
):
    handlers.on_batch(_deal_event)(on_deals_changed)


async def on_pipelines_changed(events: list[Any], ctx: BatchContext) -> None:
    for pipeline in cast(list[PipelineState], events):
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


for _pipeline_event in (PipelineCreated, PipelineUpdated):
    handlers.on_batch(_pipeline_event)(on_pipelines_changed)


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
        "entered_at": datetime.fromisoformat(move.entered_at),
        "left_at": None,
    }
    await insert_ignoring_duplicates(ctx.session, STAYS, [opened])
    if move.from_stage_id and move.from_entered_at and move.left_at:
        closed = {
            "deal_id": event.id,
            "stage_id": move.from_stage_id,
            "pipeline_id": move.pipeline_id,
            "entered_at": datetime.fromisoformat(move.from_entered_at),
            "left_at": datetime.fromisoformat(move.left_at),
        }
        await upsert(
            ctx.session,
            STAYS,
            closed,
            key=["deal_id", "stage_id", "entered_at"],
            update=["left_at"],
        )
