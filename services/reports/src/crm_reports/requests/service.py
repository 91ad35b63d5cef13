"""Requests from their read model, visible by assignee."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.models import RequestFact
from crm_reports.requests.schemas import RequestsRead, RequestsRow
from crm_reports.scope import Filters


async def requests(*, db: Database, principal: Principal, filters: Filters) -> RequestsRead:
    """Opened and resolved in the period, open now, average resolution of those resolved."""
    visible = filters.owners(principal, RequestFact.assignee_id)
    who = RequestFact.assignee_id
    opened_q = (
        select(who, func.count())
        .where(*visible, *filters.within(RequestFact.opened_at))
        .group_by(who)
    )
    resolved_q = (
        select(who, func.count(), func.sum(RequestFact.resolution_seconds))
        .where(*visible, RequestFact.status == "resolved", *filters.within(RequestFact.resolved_at))
        .group_by(who)
    )
    open_q = (
        select(who, func.count()).where(*visible, RequestFact.status != "resolved").group_by(who)
    )
    figures: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    async with db.session() as session:
        for assignee, n in (await session.execute(opened_q)).all():
            figures[assignee][0] = int(n)
        for assignee, n, seconds in (await session.execute(resolved_q)).all():
            figures[assignee][1] = int(n)
            figures[assignee][3] = int(seconds or 0)
        for assignee, n in (await session.execute(open_q)).all():
            figures[assignee][2] = int(n)
    total = [sum(f[i] for f in figures.values()) for i in range(4)]
    return RequestsRead(
        rows=[
            RequestsRow(
                assignee_id=assignee,
                opened=f[0],
                resolved=f[1],
                open_now=f[2],
                avg_resolution_hours=round(f[3] / f[1] / 3600, 3) if f[1] else None,
            )
            for assignee, f in [*sorted(figures.items(), key=lambda i: i[0] or ""), (None, total)]
        ]
    )
