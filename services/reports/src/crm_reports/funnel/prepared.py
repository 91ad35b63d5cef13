"""The funnel from prepared data: all time from `rm_funnel_facts` (exact medians via
`rm_stay_lengths`), a period from `rm_funnel_months` and `rm_funnel_days`.

A stage's median is the middle one or two of its visible finished stays. The
length histogram says which bucket holds each middle rank and how many stays
come before it; only that bucket's stays are then read, in the order of the
index `(pipeline_id, stage_id, days, owner_id)`, all stages in one statement.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.auth import Principal
from crm_reports.aggregates import (
    FUNNEL_DAYS,
    FUNNEL_MONTHS,
    LENGTH_DAYS,
    LENGTH_MONTHS,
    NO_PREVIOUS,
    in_range,
    midnight,
    tiers,
    whole_days,
)
from crm_reports.funnel.facts import DEALS, MICROSECOND, STAGES, STAYS
from crm_reports.models import FunnelFact, StageStay, StayLength
from crm_reports.scope import Filters
from crm_reports.stats import bucket, in_bucket, mean_of_middles, middle_ranks, unindexed

# stage -> (entered, moved on, won, onward, average days)
Counts = dict[str, tuple[int, int, int, int, float | None]]


async def all_time_counts(
    session: AsyncSession, principal: Principal, pipeline_id: str, filters: Filters
) -> Counts:
    """The same figures as the query over every stay, summed from a few rows per owner."""
    f = FunnelFact
    query = (
        select(
            f.stage_id,
            func.sum(f.entered),
            func.sum(f.moved_on),
            func.sum(f.won),
            func.sum(f.onward),
            func.sum(f.stay_microseconds),
            func.sum(f.finished),
        )
        .where(f.pipeline_id == pipeline_id, *filters.owners(principal, f.owner_id))
        .group_by(f.stage_id)
    )
    counts: Counts = {}
    for stage, entered, moved_on, won, onward, total, finished in (
        await session.execute(query)
    ).all():
        average = int(total) / int(finished) / 86_400e6 if finished else None
        counts[stage] = (int(entered), int(moved_on), int(won), int(onward), average)
    return counts


async def all_time_medians(
    session: AsyncSession, principal: Principal, pipeline_id: str, filters: Filters
) -> dict[str, float]:
    visible = filters.owners(principal, StayLength.owner_id)
    histogram = (
        select(StayLength.stage_id, StayLength.bucket, func.sum(StayLength.stays))
        .where(StayLength.pipeline_id == pipeline_id, *visible)
        .group_by(StayLength.stage_id, StayLength.bucket)
        .order_by(StayLength.stage_id, StayLength.bucket)
    )
    buckets: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for stage, index, n in (await session.execute(histogram)).all():
        buckets[stage].append((index, int(n)))
    lookups = [
        _nth(stage, pipeline_id, index, offset, principal, filters)
        for stage, counts in buckets.items()
        for index, offset in middle_ranks(counts)
    ]
    return await mean_of_middles(session, lookups)


def _nth(
    stage: str, pipeline_id: str, index: int, offset: int, principal: Principal, filters: Filters
) -> Select[Any]:
    """The `offset`-th visible finished stay of one length bucket, by length."""
    row = (
        select(literal(stage).label("stage"), StageStay.days)
        .where(
            StageStay.pipeline_id == pipeline_id,
            StageStay.stage_id == stage,
            *in_bucket(StageStay.days, index),
            StageStay.owner_id.is_not(None),
            *filters.owners(principal, StageStay.owner_id),
        )
        .order_by(StageStay.days)
        .offset(offset)
        .limit(1)
        .subquery()
    )
    return select(row.c.stage, row.c.days)


# stage -> [entered, moved on, won, onward, finished stays, their microseconds]
Sums = dict[str, list[int]]
# stage -> stored lengths (days) of finished stays
Lengths = dict[str, list[float]]


async def period_counts(
    session: AsyncSession, principal: Principal, pipeline_id: str, filters: Filters
) -> tuple[Counts, dict[str, int], Lengths]:
    """A period's funnel from `rm_funnel_months` and `_days`, each stage's finished stays in
    it, and the lengths of those entered in its partial days.

    A deal counts once per stage: by its first stay entered in the period, the
    one whose previous stay in that stage (if any) came before the period.
    Whole UTC months and days come from their rows; the partial days at the period's
    edges, and the stays whose previous one lies in the first partial day, are
    read from `rm_stage_stays` (a day or two of stays), so any time zone is exact.
    """
    start, end = filters.period_from, filters.period_to
    first, last = whole_days(start, end)
    sums: Sums = defaultdict(lambda: [0] * 6)
    lengths: Lengths = defaultdict(list)
    if first and last and first >= last:
        # The whole period lies within one or two partial days.
        await _add_stays(sums, lengths, session, principal, pipeline_id, filters, (start, end))
    else:
        await _add_days(sums, session, principal, pipeline_id, filters, first, last)
        if start and first and start < midnight(first):
            edge = (start, midnight(first))
            await _add_stays(sums, lengths, session, principal, pipeline_id, filters, edge)
            await _take_reentries(sums, session, principal, pipeline_id, filters, edge, last)
        if end and last and midnight(last) < end:
            edge = (midnight(last), end)
            await _add_stays(sums, lengths, session, principal, pipeline_id, filters, edge)
    counts: Counts = {}
    for stage, (entered, moved_on, won, onward, finished, total) in sums.items():
        average = total / finished / 86_400e6 if finished else None
        counts[stage] = (entered, moved_on, won, onward, average)
    return counts, {stage: s[4] for stage, s in sums.items()}, lengths


async def _add_days(
    sums: Sums,
    session: AsyncSession,
    principal: Principal,
    pipeline_id: str,
    filters: Filters,
    first: date | None,
    last: date | None,
) -> None:
    """The whole UTC days [first, last): whole months from `rm_funnel_months`, the other
    days from `rm_funnel_days`."""
    split = tiers(first, last)
    parts = [(FUNNEL_DAYS, FUNNEL_DAYS.c.day, bounds) for bounds in split.days]
    if split.months:
        parts.append((FUNNEL_MONTHS, FUNNEL_MONTHS.c.month, split.months))
    for table, column, bounds in parts:
        d = table.c
        # A stay counts for its (deal, stage) when the previous one came before the period.
        first_here = d.previous_day < first if first else d.previous_day == NO_PREVIOUS
        counted = (d.stays, d.finished, d.won, d.onward)
        query = (
            select(
                d.stage_id,
                *(func.sum(case((first_here, c), else_=0)) for c in counted),
                func.sum(d.finished),
                func.sum(d.stay_microseconds),
            )
            .where(
                d.pipeline_id == pipeline_id,
                *filters.owners(principal, d.owner_id),
                *in_range(column, bounds),
            )
            .group_by(d.stage_id)
        )
        for stage, *values in (await session.execute(query)).all():
            sums[stage] = [a + int(b or 0) for a, b in zip(sums[stage], values, strict=True)]


def _onward(stay: Any) -> Any:
    """A later stay of the deal is in a non-lost stage further on than this stay's."""
    later, stage, own = STAYS.alias(), STAGES.alias(), STAGES.alias()
    position = (
        select(own.c.position)
        .where(own.c.id == stay.c.stage_id)
        .correlate(stay)  # two levels down: not found by auto-correlation
        .scalar_subquery()
    )
    return exists(
        select(literal(1))
        .select_from(later.join(stage, stage.c.id == later.c.stage_id))
        .where(
            later.c.deal_id == stay.c.deal_id,
            later.c.pipeline_id == stay.c.pipeline_id,
            later.c.entered_at > stay.c.entered_at,
            stage.c.kind != "lost",
            stage.c.position > position,
        )
    )


async def _add_stays(
    sums: Sums,
    lengths: Lengths,
    session: AsyncSession,
    principal: Principal,
    pipeline_id: str,
    filters: Filters,
    edge: tuple[datetime | None, datetime | None],
) -> None:
    """The stays entered within `edge` (part of the period), read one by one."""
    stay, prior = STAYS.alias(), STAYS.alias()
    earlier = [
        prior.c.deal_id == stay.c.deal_id,
        prior.c.stage_id == stay.c.stage_id,
        prior.c.entered_at < stay.c.entered_at,
    ]
    if filters.period_from:
        earlier.append(prior.c.entered_at >= filters.period_from)
    within = [stay.c.entered_at >= edge[0]] if edge[0] else []
    if edge[1]:
        within.append(stay.c.entered_at < edge[1])
    query = (
        select(
            stay.c.stage_id,
            stay.c.entered_at,
            stay.c.left_at,
            stay.c.days,
            DEALS.c.status,
            _onward(stay),
            ~exists(select(literal(1)).where(*earlier)),
        )
        .join(DEALS, DEALS.c.id == stay.c.deal_id)
        .where(
            stay.c.pipeline_id == pipeline_id,
            *within,
            *filters.owners(principal, DEALS.c.owner_id),
        )
    )
    rows = (await session.execute(query)).all()
    for stage, entered_at, left_at, days, status, onward, first in rows:
        s = sums[stage]
        if left_at is not None:
            s[4] += 1
            s[5] += (left_at - entered_at) // MICROSECOND
            if days is not None:
                lengths[stage].append(days)
        if first:
            s[0] += 1
            s[1] += int(left_at is not None)
            s[2] += int(status == "won")
            s[3] += int(bool(onward))


async def _take_reentries(
    sums: Sums,
    session: AsyncSession,
    principal: Principal,
    pipeline_id: str,
    filters: Filters,
    edge: tuple[datetime, datetime],
    last: date | None,
) -> None:
    """Stays in the whole days whose previous stay in the stage was entered in the first
    partial day: the day rows counted them as first in the period, they are not."""
    previous, stay, between = STAYS.alias(), STAYS.alias(), STAYS.alias()
    following = (
        select(func.min(between.c.entered_at))
        .where(
            between.c.deal_id == previous.c.deal_id,
            between.c.stage_id == previous.c.stage_id,
            between.c.entered_at > previous.c.entered_at,
        )
        .scalar_subquery()
    )
    within = [stay.c.entered_at >= edge[1]]
    if last:
        within.append(stay.c.entered_at < midnight(last))
    query = (
        select(stay.c.stage_id, stay.c.left_at, DEALS.c.status, _onward(stay))
        .select_from(previous)
        .join(
            stay,
            and_(
                stay.c.deal_id == previous.c.deal_id,
                stay.c.stage_id == previous.c.stage_id,
                stay.c.entered_at == following,
            ),
        )
        .join(DEALS, DEALS.c.id == stay.c.deal_id)
        .where(
            previous.c.pipeline_id == pipeline_id,
            previous.c.entered_at >= edge[0],
            previous.c.entered_at < edge[1],
            *within,
            *filters.owners(principal, DEALS.c.owner_id),
        )
    )
    for stage, left_at, status, onward in (await session.execute(query)).all():
        s = sums[stage]
        s[0] -= 1
        s[1] -= int(left_at is not None)
        s[2] -= int(status == "won")
        s[3] -= int(bool(onward))


# Walking a stage's stays in length order visits about half of all of them (to the
# middle rank); reading the period's stays by entry time and sorting them cost about
# four times as much per stay (1M deals, SQLite: a year 0.81 s sorted, 0.17 s walked;
# the README). So a period holding more than this share of the stage's finished stays
# walks; a shorter one sorts its own few.
WALK_SHARE = 0.125


async def period_medians(
    session: AsyncSession,
    principal: Principal,
    pipeline_id: str,
    filters: Filters,
    finished: dict[str, int],
    edges: Lengths,
) -> dict[str, float]:
    """Each stage's exact median over the period's finished stays.

    A caller who sees every owner: from the length histograms (`_histogram_medians`).
    Otherwise the counts give the middle ranks; each is read with an offset from an
    index alone, all stages in one statement: a long period walks the stage's stays
    in length order `(pipeline_id, stage_id, days, entered_at, owner_id)` and skips
    those entered outside it; a short one sorts its own stays, found by entry time
    in `(pipeline_id, stage_id, entered_at, days, owner_id)`.
    """
    if principal.sees_every_owner() and not (filters.owner_id or filters.team_id):
        return await _histogram_medians(session, pipeline_id, filters, edges)
    visible = filters.owners(principal, FunnelFact.owner_id)
    totals = dict(
        (
            await session.execute(
                select(FunnelFact.stage_id, func.sum(FunnelFact.finished))
                .where(FunnelFact.pipeline_id == pipeline_id, *visible)
                .group_by(FunnelFact.stage_id)
            )
        ).all()
    )
    lookups = []
    for stage, n in finished.items():
        if n <= 0:
            continue
        walk = n >= WALK_SHARE * int(totals.get(stage) or 0)
        entered = unindexed(StageStay.entered_at) if walk else StageStay.entered_at
        rows = (
            select(StageStay.days)
            .where(
                StageStay.pipeline_id == pipeline_id,
                StageStay.stage_id == stage,
                *filters.within(entered),
                StageStay.days.is_not(None),
                *filters.owners(principal, StageStay.owner_id),
            )
            .order_by(StageStay.days if walk else unindexed(StageStay.days))
            .offset((n - 1) // 2)
            .limit(2 - n % 2)
            .subquery()
        )
        lookups.append(select(literal(stage).label("stage"), rows.c.days))
    return await mean_of_middles(session, lookups)


async def _histogram_medians(
    session: AsyncSession, pipeline_id: str, filters: Filters, edges: Lengths
) -> dict[str, float]:
    """Exact medians over every owner's stays: the period's length histogram per stage
    (whole months from `rm_stay_length_months`, the other whole days from
    `rm_stay_length_days`, the partial days' stays from `edges`) says which bucket
    holds each middle rank and how many come before; only that bucket's stays are
    read, in length order from `(pipeline_id, stage_id, days, entered_at, owner_id)`,
    skipping those entered outside the period. The buckets bound the range read with
    the same floats, so the value found is the exact one, not an approximation.
    """
    histogram: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    first, last = whole_days(filters.period_from, filters.period_to)
    split = tiers(first, last)
    parts = [(LENGTH_DAYS, LENGTH_DAYS.c.day, bounds) for bounds in split.days]
    if split.months:
        parts.append((LENGTH_MONTHS, LENGTH_MONTHS.c.month, split.months))
    for table, column, bounds in parts:
        query = (
            select(table.c.stage_id, table.c.bucket, func.sum(table.c.stays))
            .where(table.c.pipeline_id == pipeline_id, *in_range(column, bounds))
            .group_by(table.c.stage_id, table.c.bucket)
        )
        for stage, index, n in (await session.execute(query)).all():
            histogram[stage][index] += int(n)
    for stage, lengths in edges.items():
        for days in lengths:
            histogram[stage][bucket(days)] += 1
    lookups = []
    for stage, counts in histogram.items():
        for index, offset in middle_ranks(sorted(counts.items())):
            row = (
                select(StageStay.days)
                .where(
                    StageStay.pipeline_id == pipeline_id,
                    StageStay.stage_id == stage,
                    *in_bucket(StageStay.days, index),
                    *filters.within(unindexed(StageStay.entered_at)),
                    StageStay.owner_id.is_not(None),  # as the histograms: deals known
                )
                .order_by(StageStay.days)
                .offset(offset)
                .limit(1)
                .subquery()
            )
            lookups.append(select(literal(stage).label("stage"), row.c.days))
    return await mean_of_middles(session, lookups)
