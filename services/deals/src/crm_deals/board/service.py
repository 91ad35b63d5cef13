"""The board: per-stage counts and sums by SQL aggregates, one keyset page of deals per stage."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_deals.board.schemas import Board, BoardColumn, CurrencyTotal
from crm_deals.deals.models import Deal
from crm_deals.deals.service import to_read, with_contact_name
from crm_deals.money import quantize
from crm_deals.pipelines.models import Stage
from crm_deals.pipelines.service import get_pipeline_row, live_stages, stage_read
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.pagination import paginate, parse_sort
from crm_kernel.problems import NotFound
from crm_kernel.tables import directory_team_members

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class BoardFilter:
    owner_id: str | None = None
    team_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def _conditions(
    principal: Principal, pipeline_id: str, filters: BoardFilter
) -> list[ColumnElement[bool]]:
    """What the caller may see of the pipeline, narrowed by the filters."""
    conditions = [Deal.pipeline_id == pipeline_id, owner_filter(principal, Deal.owner_id)]
    if filters.owner_id:
        conditions.append(Deal.owner_id == filters.owner_id)
    if filters.team_id:
        members = select(directory_team_members.c.user_id).where(
            directory_team_members.c.team_id == filters.team_id
        )
        conditions.append(Deal.owner_id.in_(members))
    if filters.created_from:
        conditions.append(Deal.created_at >= filters.created_from)
    if filters.created_to:
        conditions.append(Deal.created_at < filters.created_to)
    return conditions


async def _totals(
    session: AsyncSession, conditions: list[ColumnElement[bool]], stages: list[Stage]
) -> tuple[dict[str, int], dict[str, list[CurrencyTotal]]]:
    """Count and sums per stage and currency in one GROUP BY (never a loop over deals)."""
    rows = (
        await session.execute(
            select(Deal.stage_id, Deal.currency, func.count(), func.sum(Deal.amount))
            .where(and_(*conditions))
            .group_by(Deal.stage_id, Deal.currency)
            .order_by(Deal.stage_id, Deal.currency)
        )
    ).all()
    probability = {s.id: s.probability for s in stages}
    counts: dict[str, int] = defaultdict(int)
    totals: dict[str, list[CurrencyTotal]] = defaultdict(list)
    for stage_id, currency, count, total in rows:
        counts[stage_id] += count
        if total is None:
            continue  # only deals without an amount in this currency
        amount = Decimal(str(total))
        weighted = amount * probability.get(stage_id, Decimal(0)) / HUNDRED
        totals[stage_id].append(
            CurrencyTotal(
                currency=currency,
                amount=str(quantize(amount, currency)),
                weighted_amount=str(quantize(weighted, currency)),
            )
        )
    return counts, totals


async def _page(
    session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    stage_id: str,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One stage's deals, newest first, by keyset (index ix_deals_stage_created)."""
    keys = parse_sort(None, {"created_at": Deal.created_at}, "-created_at", Deal.id)
    query = with_contact_name(select(Deal).where(and_(*conditions), Deal.stage_id == stage_id))
    rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return [to_read(r[0], r[1]) for r in rows], next_cursor


async def board(
    *, db: Database, principal: Principal, pipeline_id: str, filters: BoardFilter, per_stage: int
) -> Board:
    """Every stage of the pipeline with its first page of deals, count and totals."""
    async with db.session() as session:
        pipeline = await get_pipeline_row(session, pipeline_id)
        stages = await live_stages(session, pipeline_id)
        conditions = _conditions(principal, pipeline_id, filters)
        counts, totals = await _totals(session, conditions, stages)
        columns = []
        for stage in stages:
            deals, next_cursor = await _page(
                session, conditions, stage.id, limit=per_stage, cursor=None
            )
            columns.append(
                BoardColumn(
                    stage=stage_read(stage),
                    count=counts.get(stage.id, 0),
                    totals=totals.get(stage.id, []),
                    deals=deals,
                    next_cursor=next_cursor,
                )
            )
    return Board(
        pipeline_id=pipeline.id, name=pipeline.name, version=pipeline.version, stages=columns
    )


async def board_stage(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    stage_id: str,
    filters: BoardFilter,
    limit: int,
    cursor: str | None,
) -> BoardColumn:
    """One stage of the board, from a cursor (the next page of that column)."""
    async with db.session() as session:
        await get_pipeline_row(session, pipeline_id)
        stages = await live_stages(session, pipeline_id)
        stage = next((s for s in stages if s.id == stage_id), None)
        if stage is None:
            raise NotFound(f"No stage {stage_id} in this pipeline.")
        conditions = _conditions(principal, pipeline_id, filters)
        counts, totals = await _totals(session, [*conditions, Deal.stage_id == stage_id], [stage])
        deals, next_cursor = await _page(session, conditions, stage_id, limit=limit, cursor=cursor)
    return BoardColumn(
        stage=stage_read(stage),
        count=counts.get(stage_id, 0),
        totals=totals.get(stage_id, []),
        deals=deals,
        next_cursor=next_cursor,
    )
