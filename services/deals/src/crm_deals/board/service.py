"""The board: per-stage counts and sums (running totals), one keyset page of deals per stage."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from crm_deals.board.schemas import Board, BoardColumn, CurrencyTotal
from crm_deals.board.totals import BoardTotal
from crm_deals.deals.models import Deal
from crm_deals.deals.service import to_read, with_contact_name
from crm_deals.money import quantize
from crm_deals.pipelines.models import Stage
from crm_deals.pipelines.service import get_pipeline_row, live_stages, stage_read
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.pagination import MAX_LIMIT, encode_cursor, paginate, parse_sort
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
    principal: Principal, pipeline_id: str, filters: BoardFilter, table: Any = Deal
) -> list[ColumnElement[bool]]:
    """What the caller may see of the pipeline, narrowed by the filters.

    `table` is `Deal` or `BoardTotal` (which has no creation time: the period
    filters apply to deals only).
    """
    conditions = [table.pipeline_id == pipeline_id, owner_filter(principal, table.owner_id)]
    if filters.owner_id:
        conditions.append(table.owner_id == filters.owner_id)
    if filters.team_id:
        members = select(directory_team_members.c.user_id).where(
            directory_team_members.c.team_id == filters.team_id
        )
        conditions.append(table.owner_id.in_(members))
    if filters.created_from:
        conditions.append(Deal.created_at >= filters.created_from)
    if filters.created_to:
        conditions.append(Deal.created_at < filters.created_to)
    return conditions


def _totals_query(
    principal: Principal, pipeline_id: str, filters: BoardFilter, stage_id: str | None
) -> Select[Any]:
    """Count, priced count and sum per stage and currency, in one GROUP BY.

    Without a period, over the running totals (a few rows per owner); with
    one, over the deals themselves (index ix_deals_stage_currency).
    """
    if filters.created_from or filters.created_to:
        source: Any = Deal
        counts: tuple[Any, ...] = (func.count(), func.count(Deal.amount), func.sum(Deal.amount))
    else:
        source = BoardTotal
        counts = (
            func.sum(BoardTotal.deals),
            func.sum(BoardTotal.priced),
            func.sum(BoardTotal.amount),
        )
    conditions = _conditions(principal, pipeline_id, filters, source)
    if stage_id is not None:
        conditions.append(source.stage_id == stage_id)
    return (
        select(source.stage_id, source.currency, *counts)
        .where(and_(*conditions))
        .group_by(source.stage_id, source.currency)
        .order_by(source.stage_id, source.currency)
    )


async def _totals(
    session: AsyncSession, query: Select[Any], stages: list[Stage]
) -> tuple[dict[str, int], dict[str, list[CurrencyTotal]]]:
    """Counts and per-currency sums (never mixed) with their probability-weighted amounts."""
    rows = (await session.execute(query)).all()
    probability = {s.id: s.probability for s in stages}
    counts: dict[str, int] = defaultdict(int)
    totals: dict[str, list[CurrencyTotal]] = defaultdict(list)
    for stage_id, currency, count, priced, total in rows:
        counts[stage_id] += int(count)
        if not priced:
            continue  # no deal of this currency has an amount yet
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


async def _first_pages(
    session: AsyncSession, conditions: list[ColumnElement[bool]], stages: list[Stage], limit: int
) -> dict[str, tuple[list[Any], str | None]]:
    """Every stage's first page in ONE query: a UNION ALL of per-stage keyset LIMITs.

    Each branch reads its stage's newest `limit + 1` deals from the index
    (ix_deals_stage_created, or the owner one for a rep); one round trip
    instead of one per stage. Cursors are those `_page` continues from.
    """
    newest = (Deal.created_at.desc(), Deal.id.desc())
    branches = [
        select(Deal.id)
        .where(and_(*conditions), Deal.stage_id == stage.id)
        .order_by(*newest)
        .limit(limit + 1)
        .subquery()
        for stage in stages
    ]
    # Ids only (building the statement costs more than running it), each branch
    # wrapped in its own SELECT: SQLite refuses LIMIT inside a bare compound.
    first = union_all(*(select(branch.c.id) for branch in branches)).subquery()
    rows = (
        await session.execute(
            with_contact_name(select(Deal).where(Deal.id.in_(select(first.c.id)))).order_by(
                Deal.stage_id, *newest
            )
        )
    ).all()
    by_stage: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_stage[row[0].stage_id].append(row)
    pages: dict[str, tuple[list[Any], str | None]] = {}
    for stage in stages:
        found = by_stage.get(stage.id, [])
        cursor = None
        if len(found) > limit:
            found = found[:limit]
            cursor = encode_cursor([found[-1][0].created_at, found[-1][0].id])
        pages[stage.id] = ([to_read(r[0], r[1]) for r in found], cursor)
    return pages


async def board(
    *, db: Database, principal: Principal, pipeline_id: str, filters: BoardFilter, per_stage: int
) -> Board:
    """Every stage of the pipeline with its first page of deals, count and totals."""
    async with db.session() as session:
        pipeline = await get_pipeline_row(session, pipeline_id)
        stages = await live_stages(session, pipeline_id)
        conditions = _conditions(principal, pipeline_id, filters)
        query = _totals_query(principal, pipeline_id, filters, None)
        counts, totals = await _totals(session, query, stages)
        pages = await _first_pages(session, conditions, stages, max(1, min(per_stage, MAX_LIMIT)))
        columns = []
        for stage in stages:
            deals, next_cursor = pages[stage.id]
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
        query = _totals_query(principal, pipeline_id, filters, stage_id)
        counts, totals = await _totals(session, query, [stage])
        deals, next_cursor = await _page(session, conditions, stage_id, limit=limit, cursor=cursor)
    return BoardColumn(
        stage=stage_read(stage),
        count=counts.get(stage_id, 0),
        totals=totals.get(stage_id, []),
        deals=deals,
        next_cursor=next_cursor,
    )
