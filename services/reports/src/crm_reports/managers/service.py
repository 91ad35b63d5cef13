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

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.aggregates import closed_by_mix, deal_totals, win_rates_by_mix
from crm_reports.managers.schemas import ManagerRow, ManagersRead
from crm_reports.models import ActivityFact, DealFact, TaskFact
from crm_reports.overview.schemas import MoneyTotal
from crm_reports.scope import Filters
from crm_reports.stats import CENT, days_between, median_by, ratio


def deal_scope(filters: Filters, principal: Principal) -> Any:
    def scope(owner: Any, pipeline: Any) -> list[Any]:
        return [*filters.owners(principal, owner), *filters.pipeline(pipeline)]

    return scope


async def median_cycles(
    session: AsyncSession, filters: Filters, principal: Principal, *, per_owner: bool = True
) -> dict[str, float]:
    """Median days from creation to win of the deals won in the period, per owner (or overall)."""
    query = median_by(
        DealFact.owner_id if per_owner else literal("all"),
        days_between(DealFact.created_at, DealFact.closed_at),
        *filters.owners(principal, DealFact.owner_id),
        *filters.pipeline(DealFact.pipeline_id),
        DealFact.status == "won",
        *filters.within(DealFact.closed_at),
    )
    return {key: round(float(days), 3) for key, days in (await session.execute(query)).all()}


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
        cycles = await median_cycles(session, filters, principal)
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
