"""Per-manager results over the records the caller may see.

Deal counts and revenue come from the per-day aggregate; activities, overdue
tasks and the cycle from their read models. The lead-mix model: every closed
deal has a lead source (`manual` when created by hand, `none` when unknown) and
an amount band (its currency and the number of digits of its amount, so
1,000-9,999 RUB is one band). The historical win rate of each (source, band)
over the whole base is what a typical manager wins with such deals; a manager's
`expected_wins` is the sum of those rates over their deals closed in the
period, and `wins_vs_expected` = actual wins / expected wins. Picking only easy
leads raises expected wins as much as actual ones, so it is not rewarded.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.aggregates import closed_by_mix, deal_totals, win_rates_by_mix
from crm_reports.managers.schemas import ManagerRow, ManagersRead
from crm_reports.models import ActivityFact, DealCycle, DealFact, DealTotal, TaskFact
from crm_reports.overview.schemas import MoneyTotal
from crm_reports.scope import Filters
from crm_reports.stats import (
    BOUNDS,
    CENT,
    mean_of_middles,
    median_by,
    middle_ranks,
    ratio,
    unindexed,
)


def deal_scope(filters: Filters, principal: Principal) -> Any:
    def scope(owner: Any, pipeline: Any) -> list[Any]:
        return [*filters.owners(principal, owner), *filters.pipeline(pipeline)]

    return scope


# Walking an owner's wins in cycle order visits about half of all of them; sorting the
# period's own wins costs several times as much per deal (1M deals, SQLite: a year's
# medians 0.30 s sorted, 0.03 s walked). So a period holding more than this share of
# the visible wins walks; a shorter one sorts its few.
WALK_SHARE = 0.125


async def median_cycles(
    session: AsyncSession,
    filters: Filters,
    principal: Principal,
    *,
    per_owner: bool = True,
    won: dict[str, int] | None = None,
) -> dict[str, float]:
    """Median days from creation to win of the deals won in the period, per owner (or overall).

    `won`: each visible owner's wins in the period, when the caller has counted them.
    """
    if per_owner and not (filters.period_from or filters.period_to):
        return await all_time_median_cycles(session, filters, principal)
    if per_owner and won is not None:
        everyone = await session.execute(
            select(func.sum(DealTotal.won)).where(
                *filters.owners(principal, DealTotal.owner_id),
                *filters.pipeline(DealTotal.pipeline_id),
            )
        )
        if sum(won.values()) >= WALK_SHARE * int(everyone.scalar() or 0):
            return await _walked_median_cycles(session, filters, won)
    query = median_by(
        DealFact.owner_id if per_owner else literal("all"),
        DealFact.cycle_days,  # read with the period from the index on closed deals
        *filters.owners(principal, DealFact.owner_id),
        *filters.pipeline(DealFact.pipeline_id),
        DealFact.status == "won",
        *filters.within(DealFact.closed_at),
    )
    return {key: round(float(days), 3) for key, days in (await session.execute(query)).all()}


async def _walked_median_cycles(
    session: AsyncSession, filters: Filters, won: dict[str, int]
) -> dict[str, float]:
    """Each owner's middle win(s) of the period by offset, walking the owner's wins in
    cycle order in `(owner_id, status, cycle_days, closed_at, pipeline_id)` and skipping
    those closed outside the period; every owner in one statement."""
    picks = [(owner, n) for owner, n in sorted(won.items()) if n > 0]
    if not picks:
        return {}
    conditions = (
        DealFact.status == "won",
        DealFact.cycle_days.is_not(None),
        # Keeps SQLite from reading the period by the closed-deals index and sorting it.
        *filters.within(unindexed(DealFact.closed_at)),
        *filters.pipeline(DealFact.pipeline_id),
    )
    middles = [
        select(DealFact.cycle_days)
        .where(DealFact.owner_id == owner, *conditions)
        .order_by(DealFact.cycle_days)
        .limit(2 - n % 2)
        .offset((n - 1) // 2)
        .subquery()
        for owner, n in picks
    ]
    medians = await mean_of_middles(
        session,
        [
            select(literal(owner).label("owner"), m.c.cycle_days)
            for (owner, _), m in zip(picks, middles, strict=True)
        ],
    )
    return {owner: round(days, 3) for owner, days in medians.items()}


async def all_time_median_cycles(
    session: AsyncSession, filters: Filters, principal: Principal
) -> dict[str, float]:
    """Exact per-owner medians: `rm_deal_cycles` says which bucket of days holds the middle
    win(s) and how many come before; only that bucket of the (owner, status, cycle_days)
    index is read, every owner in one statement.
    """
    histogram = (
        select(DealCycle.owner_id, DealCycle.bucket, func.sum(DealCycle.won))
        .where(
            *filters.owners(principal, DealCycle.owner_id),
            *filters.pipeline(DealCycle.pipeline_id),
        )
        .group_by(DealCycle.owner_id, DealCycle.bucket)
        .order_by(DealCycle.owner_id, DealCycle.bucket)
    )
    buckets: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for owner, index, n in (await session.execute(histogram)).all():
        buckets[owner].append((index, int(n)))
    picks = [
        (owner, index, offset)
        for owner, counts in buckets.items()
        for index, offset in middle_ranks(counts)
    ]
    if not picks:
        return {}
    values: dict[str, list[float]] = defaultdict(list)
    statement, params = _middle_cycles_sql(picks, filters.pipeline_id)
    for i, days in (await session.execute(text(statement), params)).all():
        values[picks[i][0]].append(float(days))
    return {owner: round(sum(v) / len(v), 3) for owner, v in values.items()}


def _middle_cycles_sql(
    picks: list[tuple[str, int, int]], pipeline_id: str | None
) -> tuple[str, dict[str, Any]]:
    """One statement reading each (owner, bucket, offset) in index order.

    Plain SQL: building a hundred SQLAlchemy subqueries costs more than running them.
    Only our own names and numbered parameters go into the text.
    """
    parts: list[str] = []
    params: dict[str, Any] = {}
    for i, (owner, index, offset) in enumerate(picks):
        where = [f"owner_id = :o{i}", "status = 'won'", "cycle_days IS NOT NULL"]
        params[f"o{i}"] = owner
        # Bounds and offsets are our own numbers, written in so that PostgreSQL plans
        # each read for what it is (a parameterised generic plan misjudges them).
        if index > 0:
            where.append(f"cycle_days >= {BOUNDS[index - 1]!r}")
        if index < len(BOUNDS):
            where.append(f"cycle_days < {BOUNDS[index]!r}")
        if pipeline_id:
            where.append("pipeline_id = :pipeline")
            params["pipeline"] = pipeline_id
        parts.append(
            f"SELECT {i} AS i, cycle_days FROM (SELECT cycle_days FROM rm_deals "  # noqa: S608
            f"WHERE {' AND '.join(where)} ORDER BY cycle_days LIMIT 1 OFFSET {int(offset)}) AS m{i}"
        )
    return " UNION ALL ".join(parts), params


async def managers(
    *, db: Database, principal: Principal, filters: Filters, now: datetime | None = None
) -> ManagersRead:
    """Deals created in the period, won or lost (closed) in it, activities, overdue tasks, lead mix."""
    now = now or datetime.now(UTC)
    activities_q = (
        select(ActivityFact.author_id, ActivityFact.activity_type, func.count())
        .where(
            *filters.owners(principal, ActivityFact.author_id),
            ActivityFact.deleted_at.is_(None),
            *filters.within(ActivityFact.occurred_at),
        )
        .group_by(ActivityFact.author_id, ActivityFact.activity_type)
    )
    overdue_q = (
        select(TaskFact.assignee_id, func.count())
        .where(
            *filters.owners(principal, TaskFact.assignee_id),
            TaskFact.status == "open",
            TaskFact.deleted_at.is_(None),
            TaskFact.due_at < now,
        )
        .group_by(TaskFact.assignee_id)
    )
    async with db.session() as session:
        totals = await deal_totals(
            session,
            scope=deal_scope(filters, principal),
            period_from=filters.period_from,
            period_to=filters.period_to,
        )
        history = await win_rates_by_mix(session)
        mixes = await closed_by_mix(
            session,
            scope=deal_scope(filters, principal),
            period_from=filters.period_from,
            period_to=filters.period_to,
        )
        won_in_period: dict[str, int] = defaultdict(int)
        for (owner, _), t in totals.items():
            won_in_period[owner] += t.won
        cycles = await median_cycles(session, filters, principal, won=won_in_period)
        activities: dict[str, dict[str, int]] = defaultdict(dict)
        for author, kind, n in cast(Any, (await session.execute(activities_q)).all()):
            activities[author][kind] = int(n)
        overdue = {a: int(n) for a, n in cast(Any, (await session.execute(overdue_q)).all())}
    created: dict[str, int] = defaultdict(int)
    won: dict[str, int] = defaultdict(int)
    lost: dict[str, int] = defaultdict(int)
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for (owner, currency), t in totals.items():
        created[owner] += t.created
        won[owner] += t.won
        lost[owner] += t.lost
        if t.won:
            revenue[owner][currency] += t.won_amount
    rates = {mix: w / c for mix, (w, c) in history.items()}
    expected: dict[str, float] = defaultdict(float)
    for (owner, source, band), closed_count in mixes.items():
        expected[owner] += closed_count * rates.get((source, band), 0.0)
    base_rate = ratio(sum(w for w, _ in history.values()), sum(c for _, c in history.values()))
    rows = []
    owners = set(created) | set(won) | set(lost) | set(activities) | set(overdue)
    for owner in sorted(owners):
        closed = won[owner] + lost[owner]
        vs_expected = ratio(won[owner], expected[owner]) if closed else None
        rows.append(
            ManagerRow(
                owner_id=owner,
                deals_created=created[owner],
                deals_won=won[owner],
                deals_lost=lost[owner],
                win_rate=ratio(won[owner], closed),
                revenue_won=[
                    MoneyTotal(currency=c, amount=str(a.quantize(CENT)))
                    for c, a in sorted(revenue[owner].items())
                ],
                average_deal_size=[
                    MoneyTotal(currency=c, amount=str((a / won[owner]).quantize(CENT)))
                    for c, a in sorted(revenue[owner].items())
                ],
                median_cycle_days=cycles.get(owner),
                activities=activities.get(owner, {}),
                overdue_tasks=overdue.get(owner, 0),
                expected_wins=round(expected[owner], 4) if closed else None,
                wins_vs_expected=vs_expected,
                mix_adjusted_win_rate=round(base_rate * vs_expected, 4)
                if vs_expected is not None and base_rate is not None
                else None,
            )
        )
    return ManagersRead(managers=rows)
