"""Lifecycle distribution over time, from each contact's versions (stage, owner, trash)."""

from __future__ import annotations

from bisect import bisect_left
from calendar import monthrange
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_reports.lifecycle.schemas import LifecycleBucket, LifecycleRead
from crm_reports.models import ContactStage
from crm_reports.scope import Filters, visible_owners

MAX_BUCKETS = 400


class Bucket(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later; the month's last day when that month is shorter."""
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    return moment.replace(
        year=year, month=month + 1, day=min(moment.day, monthrange(year, month + 1)[1])
    )


def bucket_edges(start: datetime, end: datetime, bucket: Bucket, zone: ZoneInfo) -> list[datetime]:
    """Bucket boundaries from `start` to `end`, stepping by local calendar days or months."""
    local = start.astimezone(zone)
    edges = [local]
    while edges[-1] < end and len(edges) <= MAX_BUCKETS:
        last = edges[-1]
        if bucket is Bucket.MONTH:
            # Counted from the start, so 31 Jan -> 28 Feb -> 31 Mar rather than drifting to the 28th.
            following = add_months(local.replace(tzinfo=None), len(edges))
        else:
            following = last.replace(tzinfo=None) + timedelta(
                days=7 if bucket is Bucket.WEEK else 1
            )
        # Local wall time, so a bucket spans a whole local day across a DST change.
        edges.append(following.replace(tzinfo=zone))
    edges[-1] = min(edges[-1], end.astimezone(zone))
    return edges


async def lifecycle(
    *,
    db: Database,
    principal: Principal,
    filters: Filters,
    bucket: Bucket,
    zone: ZoneInfo,
    period_from: datetime,
    period_to: datetime,
) -> LifecycleRead:
    """At each bucket's end, how many visible contacts stood in each lifecycle stage."""
    edges = bucket_edges(period_from, period_to, bucket, zone)
    ends = edges[1:]
    query = (
        select(
            ContactStage.contact_id,
            ContactStage.at,
            ContactStage.owner_id,
            ContactStage.lifecycle_stage,
            ContactStage.deleted,
        )
        .where(ContactStage.at < period_to)
        .order_by(ContactStage.contact_id, ContactStage.version)
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
        visible = await visible_owners(session, principal, filters, {r[2] for r in rows})
    counts: list[Counter[str]] = [Counter() for _ in ends]
    by_contact: dict[str, list[tuple[datetime, str, str | None, bool]]] = defaultdict(list)
    for contact, at, owner, stage, deleted in rows:
        by_contact[contact].append((at, owner, stage, deleted))
    for versions in by_contact.values():
        versions.sort(key=lambda v: v[0])
        times = [v[0] for v in versions]
        for i, end in enumerate(ends):
            # The newest version before the bucket's end: how the contact stood then.
            index = bisect_left(times, end) - 1
            if index < 0:
                continue
            _, owner, stage, deleted = versions[index]
            if not deleted and owner in visible:
                counts[i][stage or "none"] += 1
    return LifecycleRead(
        bucket=bucket.value,
        time_zone=str(zone),
        buckets=[
            LifecycleBucket(
                bucket_start=edges[i], bucket_end=end, stages=dict(sorted(counts[i].items()))
            )
            for i, end in enumerate(ends)
        ],
    )
