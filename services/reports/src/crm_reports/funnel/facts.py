"""`rm_funnel_facts`, `rm_stay_lengths`: a deal's part in the all-time funnel, kept with its stays.

A deal's part depends on its stays, its owner and status, and the positions and
kinds of its stages. The deal handler takes the stored part away before applying
an event and adds the new one after (same transaction, under the deal's lock);
a pipeline whose stages moved is recomputed whole. So the table always equals
the funnel query over `rm_stage_stays` grouped by owner, in any event order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_reports.aggregates import FUNNEL, LENGTHS, Contribution, add_contributions
from crm_reports.models import DealFact, StageFact, StageStay
from crm_reports.stats import bucket

DEALS = cast(Table, DealFact.__table__)
STAGES = cast(Table, StageFact.__table__)
STAYS = cast(Table, StageStay.__table__)
MICROSECOND = timedelta(microseconds=1)
# stage id -> (position, kind)
Stages = Mapping[str, tuple[int | None, str]]


def stays_part(
    owner_id: str, status: str, stays: Iterable[Mapping[Any, Any]], stages: Stages, sign: int
) -> Contribution:
    """What one deal's stays add to the funnel (`sign` -1 to take it away).

    Per pipeline, in order of entry: a stay goes "onward" when a later stay of the
    deal is in a non-lost stage of a higher position (as the funnel query's window).
    """
    rows: Contribution = defaultdict(dict)
    by_pipeline: dict[str, list[Mapping[Any, Any]]] = defaultdict(list)
    for stay in stays:
        by_pipeline[stay["pipeline_id"]].append(stay)
    for pipeline, group in by_pipeline.items():
        flags: dict[str, dict[str, int]] = {}
        later: int | None = None  # the highest non-lost position entered after this stay
        for stay in sorted(group, key=lambda s: s["entered_at"], reverse=True):
            position, kind = stages.get(stay["stage_id"], (None, ""))
            f = flags.setdefault(stay["stage_id"], defaultdict(int))
            f["entered"] = 1
            f["won"] = int(status == "won")
            if stay["left_at"] is not None:
                f["moved_on"] = 1
                f["finished"] += 1
                f["stay_microseconds"] += (stay["left_at"] - stay["entered_at"]) // MICROSECOND
                if stay["days"] is not None:  # the stored length: the one medians read
                    length = (
                        "lengths",
                        (pipeline, stay["stage_id"], owner_id, bucket(stay["days"])),
                    )
                    rows[length]["stays"] = rows[length].get("stays", 0) + sign
            if position is not None and later is not None and later > position:
                f["onward"] = 1
            if position is not None and kind and kind != "lost":
                later = position if later is None else max(later, position)
        for stage_id, counters in flags.items():
            rows[("funnel", (pipeline, stage_id, owner_id))] = {
                name: sign * value for name, value in counters.items()
            }
    return rows


async def layout_lock(session: AsyncSession, *, exclusive: bool) -> None:
    """Deal batches (shared) and a pipeline's recompute (exclusive) never interleave.

    Otherwise a replica could take a deal's part away under the old stage layout
    while another recomputes the pipeline under the new one. PostgreSQL only:
    SQLite already runs one writer at a time.
    """
    bind = session.bind
    if bind is None or bind.dialect.name != "postgresql":
        return
    mode = "" if exclusive else "_shared"
    await session.execute(
        text(f"SELECT pg_advisory_xact_lock{mode}(hashtextextended('crm_reports.funnel', 0))")
    )


async def stage_map(session: AsyncSession, stage_ids: Sequence[str]) -> Stages:
    found = await session.execute(
        select(STAGES.c.id, STAGES.c.position, STAGES.c.kind).where(STAGES.c.id.in_(stage_ids))
    )
    return {stage: (position, kind) for stage, position, kind in found.all()}


async def deal_part(session: AsyncSession, deal_id: str, sign: int) -> Contribution:
    """The stored deal's part in the funnel now (nothing while the deal is unknown)."""
    deal = (
        await session.execute(select(DEALS.c.owner_id, DEALS.c.status).where(DEALS.c.id == deal_id))
    ).first()
    if deal is None:
        return {}
    stays = (await session.execute(select(STAYS).where(STAYS.c.deal_id == deal_id))).mappings()
    rows = list(stays.all())
    stages = await stage_map(session, sorted({s["stage_id"] for s in rows}))
    return stays_part(deal.owner_id, deal.status, rows, stages, sign)


async def follow_owner(session: AsyncSession, deal_id: str) -> None:
    """Stays carry their deal's current owner (so medians filter owners in index order)."""
    owner = select(DEALS.c.owner_id).where(DEALS.c.id == deal_id).scalar_subquery()
    await session.execute(update(STAYS).where(STAYS.c.deal_id == deal_id).values(owner_id=owner))


async def recompute_pipeline(session: AsyncSession, pipeline_id: str) -> None:
    """Rebuild one pipeline's facts from its stays (after its stages moved or changed kind)."""
    for table in (FUNNEL, LENGTHS):
        await session.execute(delete(table).where(table.c.pipeline_id == pipeline_id))
    stages = {
        stage: (position, kind)
        for stage, position, kind in (
            await session.execute(
                select(STAGES.c.id, STAGES.c.position, STAGES.c.kind).where(
                    STAGES.c.pipeline_id == pipeline_id
                )
            )
        ).all()
    }
    query = (
        select(STAYS, DEALS.c.owner_id.label("deal_owner"), DEALS.c.status)
        .join(DEALS, DEALS.c.id == STAYS.c.deal_id)
        .where(STAYS.c.pipeline_id == pipeline_id)
        .order_by(STAYS.c.deal_id)
    )
    parts: list[Contribution] = []
    current: list[Mapping[Any, Any]] = []
    for row in (await session.execute(query)).mappings():
        if current and current[0]["deal_id"] != row["deal_id"]:
            parts.append(_part(current, stages))
            current = []
        current.append(row)
    if current:
        parts.append(_part(current, stages))
    await add_contributions(session, *parts)


def _part(stays: list[Mapping[Any, Any]], stages: Stages) -> Contribution:
    first = stays[0]
    return stays_part(first["deal_owner"], first["status"], stays, stages, 1)
