"""Churn risk: a customer (a contact with a won deal) is at risk when the time since their
last touch (a won deal or a manual activity) exceeds their usual interval between touches."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from typing import Any, cast

from sqlalchemy import select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.churn.schemas import AtRisk, ChurnRead
from crm_reports.models import ActivityFact, ContactFact, DealFact
from crm_reports.scope import Filters, visible_owners
from crm_reports.stats import DAY


async def churn(
    *, db: Database, principal: Principal, filters: Filters, as_of: datetime, default_days: int
) -> ChurnRead:
    """Visible customers whose quiet time exceeds their usual interval, most overdue first."""
    wins = select(DealFact.contact_id, DealFact.owner_id, DealFact.closed_at).where(
        DealFact.status == "won",
        DealFact.contact_id.is_not(None),
        DealFact.closed_at <= as_of,
        *filters.pipeline(DealFact.pipeline_id),
    )
    touches: dict[str, list[datetime]] = defaultdict(list)
    won: dict[str, int] = defaultdict(int)
    owner_of: dict[str, str] = {}
    async with db.session() as session:
        for contact, owner, closed_at in cast(Any, (await session.execute(wins)).all()):
            touches[contact].append(closed_at)
            won[contact] += 1
            owner_of.setdefault(contact, owner)
        customers = list(touches)
        activities = select(ActivityFact.contact_id, ActivityFact.occurred_at).where(
            ActivityFact.contact_id.in_(customers),
            ActivityFact.deleted_at.is_(None),
            ActivityFact.occurred_at <= as_of,
        )
        for contact, occurred_at in cast(Any, (await session.execute(activities)).all()):
            touches[contact].append(occurred_at)
        owners = select(ContactFact.id, ContactFact.owner_id).where(ContactFact.id.in_(customers))
        # The contact's own owner decides visibility; a contact not heard of yet: its deal's.
        owner_of.update(dict((await session.execute(owners)).all()))
        visible = await visible_owners(session, principal, filters, set(owner_of.values()))
    result = []
    for contact, times in touches.items():
        if owner_of[contact] not in visible:
            continue
        times.sort()
        gaps = [(b - a).total_seconds() / DAY for a, b in pairwise(times)]
        gaps = [g for g in gaps if g > 0]
        usual = statistics.median(gaps) if gaps else float(default_days)
        since = (as_of - times[-1]).total_seconds() / DAY
        if since > usual:
            result.append(
                AtRisk(
                    contact_id=contact,
                    owner_id=owner_of[contact],
                    last_touch_at=times[-1],
                    days_since=round(since, 3),
                    usual_interval_days=round(usual, 3),
                    deals_won=won[contact],
                )
            )
    result.sort(key=lambda r: r.usual_interval_days / r.days_since)
    return ChurnRead(
        as_of=as_of,
        customers=sum(1 for c in touches if owner_of[c] in visible),
        at_risk=result,
    )
