"""`rm_funnel_facts`, `rm_stay_lengths`, `rm_funnel_days`, `rm_funnel_months`,
`rm_stay_length_days`, `rm_stay_length_months`: a deal's part in the funnel (all time, and
per day and month of entry), kept with its stays.

A deal's part depends on its stays, its owner and status, and the positions and
kinds of its stages. The deal handler takes the stored part away before applying
an event and adds the new one after (same transaction, under the deal's lock);
a pipeline whose stages moved is recomputed whole. So the table always equals
the funnel query over `rm_stage_stays` grouped by owner, in any event order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_reports.aggregates import (
    FUNNEL,
    FUNNEL_DAYS,
    FUNNEL_MONTHS,
    LENGTH_DAYS,
    LENGTH_MONTHS,
    LENGTHS,
    NO_PREVIOUS,
    Contribution,
    add_contributions,
    month_of,
)
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
    Each stay also counts in its day and month of entry, keyed by the entry day of
    the deal's previous stay in that stage (how a period counts a deal once).
    """
    rows: Contribution = defaultdict(dict)

    def add(key: tuple[str, tuple[Any, ...]], counters: Mapping[str, int]) -> None:
        row = rows[key]
        for name, value in counters.items():
            row[name] = row.get(name, 0) + sign * value

    by_pipeline: dict[str, list[Mapping[Any, Any]]] = defaultdict(list)
    for stay in stays:
        by_pipeline[stay["pipeline_id"]].append(stay)
    for pipeline, group in by_pipeline.items():
        flags: dict[str, dict[str, int]] = {}
        previous = _previous_entries(group)
        later: int | None = None  # the highest non-lost position entered after this stay
        for stay in sorted(group, key=lambda s: s["entered_at"], reverse=True):
            position, kind = stages.get(stay["stage_id"], (None, ""))
            f = flags.setdefault(stay["stage_id"], defaultdict(int))
            f["entered"] = 1
            f["won"] = int(status == "won")
            day = {"stays": 1, "won": int(status == "won")}
            if stay["left_at"] is not None:
                length = (stay["left_at"] - stay["entered_at"]) // MICROSECOND
                f["moved_on"] = 1
                f["finished"] += 1
                f["stay_microseconds"] += length
                day |= {"finished": 1, "stay_microseconds": length}
                if stay["days"] is not None:  # the stored length: the one medians read
                    index = bucket(stay["days"])
                    add(("lengths", (pipeline, stay["stage_id"], owner_id, index)), {"stays": 1})
                    on = _day(stay["entered_at"])
                    for target, when in (("length_days", on), ("length_months", month_of(on))):
                        add((target, (pipeline, when, stay["stage_id"], index)), {"stays": 1})
            if position is not None and later is not None and later > position:
                f["onward"] = 1
                day["onward"] = 1
            if position is not None and kind and kind != "lost":
                later = position if later is None else max(later, position)
            entered = previous[id(stay)]
            on, earlier = _day(stay["entered_at"]), _day(entered) if entered else NO_PREVIOUS
            add(("funnel_days", (pipeline, on, stay["stage_id"], owner_id, earlier)), day)
            month = month_of(on)
            key = (pipeline, month, stay["stage_id"], owner_id, month_previous(earlier, month))
            add(("funnel_months", key), day)
        for stage_id, counters in flags.items():
            add(("funnel", (pipeline, stage_id, owner_id)), counters)
    return rows


def month_previous(previous: date, month: date) -> date:
    """A month row's `previous_day`: a previous entry within the month itself becomes the
    month's first day.

    A period reads a month row only when the whole month lies in it, so such a
    previous stay is in the period too (never "before the period"), whichever day
    it was: one row for all of them instead of one per day (a third of the rows).
    """
    return previous if previous < month else month


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _previous_entries(stays: list[Mapping[Any, Any]]) -> dict[int, datetime | None]:
    """Each stay's previous entry into the same stage by the same deal (None: its first)."""
    last: dict[str, datetime] = {}
    found: dict[int, datetime | None] = {}
    for stay in sorted(stays, key=lambda s: s["entered_at"]):
        found[id(stay)] = last.get(stay["stage_id"])
        last[stay["stage_id"]] = stay["entered_at"]
    return found


async def aggregates_lock(session: AsyncSession) -> None:
    """Deal batches and a pipeline's recompute apply one at a time (PostgreSQL).

    Aggregate rows are shared by many deals: two replicas applying deals at once
    locked them in different orders and deadlocked (seen in the two-replica test:
    one waited for a deal's lock, the other for an `rm_deal_totals` row). Nor may
    a deal's part be taken away under the old stage layout while a pipeline is
    recomputed under the new one. Held to commit; SQLite already runs one writer.
    """
    bind = session.bind
    if bind is None or bind.dialect.name != "postgresql":
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('crm_reports.funnel', 0))")
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
    for table in (FUNNEL, LENGTHS, FUNNEL_DAYS, FUNNEL_MONTHS, LENGTH_DAYS, LENGTH_MONTHS):
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
