"""Per-manager results from the deal read model, over the deals the caller may see."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_reports.managers.schemas import ManagerRow, ManagersRead
from crm_reports.models import DealFact
from crm_reports.overview.schemas import MoneyTotal
from crm_reports.overview.service import CENT, within

DAY = 86400.0


async def managers(
    *, db: Database, principal: Principal, period_from: datetime | None, period_to: datetime | None
) -> ManagersRead:
    """Deals created in the period, and deals won or lost (closed) in it, per owner."""
    visible = owner_filter(principal, DealFact.owner_id)
    created = (
        select(DealFact.owner_id, func.count())
        .where(visible, *within(DealFact.created_at, period_from, period_to))
        .group_by(DealFact.owner_id)
    )
    closed = select(
        DealFact.owner_id,
        DealFact.status,
        DealFact.amount,
        DealFact.currency,
        DealFact.created_at,
        DealFact.closed_at,
    ).where(
        visible,
        DealFact.status.in_(("won", "lost")),
        *within(DealFact.closed_at, period_from, period_to),
    )
    async with db.session() as session:
        created_by: dict[str, int] = {
            owner: n for owner, n in (await session.execute(created)).all()
        }
        closed_rows = (await session.execute(closed)).all()
    won: dict[str, int] = defaultdict(int)
    lost: dict[str, int] = defaultdict(int)
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    cycles: dict[str, list[float]] = defaultdict(list)
    # Closed deals in a period are few enough to fold here; the sums stay exact Decimals.
    for owner, status, amount, currency, created_at, closed_at in closed_rows:
        if status == "lost":
            lost[owner] += 1
            continue
        won[owner] += 1
        revenue[owner][currency] += Decimal(amount or 0)
        if closed_at is not None:
            cycles[owner].append((closed_at - created_at).total_seconds() / DAY)
    rows = []
    for owner in sorted(set(created_by) | set(won) | set(lost)):
        closed_count = won[owner] + lost[owner]
        rows.append(
            ManagerRow(
                owner_id=owner,
                deals_created=created_by.get(owner, 0),
                deals_won=won[owner],
                deals_lost=lost[owner],
                win_rate=round(won[owner] / closed_count, 4) if closed_count else None,
                revenue_won=[
                    MoneyTotal(currency=c, amount=str(a.quantize(CENT)))
                    for c, a in sorted(revenue[owner].items())
                ],
                average_deal_size=[
                    MoneyTotal(currency=c, amount=str((a / won[owner]).quantize(CENT)))
                    for c, a in sorted(revenue[owner].items())
                ],
                median_cycle_days=round(statistics.median(cycles[owner]), 3)
                if cycles[owner]
                else None,
            )
        )
    return ManagersRead(managers=rows)
