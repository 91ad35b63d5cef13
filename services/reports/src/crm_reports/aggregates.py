"""Incremental deal aggregates, kept in step with the deal read model.

`rm_deal_days`: per UTC day, owner, pipeline and currency, deals created, won,
lost and the amount won; `rm_deal_months`: the same per UTC month (a long period
sums a row per month); `rm_deal_totals`: the same over all time;
`rm_deal_cycles`: won deals per bucket of days to win (to locate medians). `rm_deal_mix`: per owner, pipeline, lead source and
amount band, deals won and lost over all time (the lead-mix win rates), and
`rm_deal_mix_months` per UTC month of closing. Each time a deal's newest
state changes, its old contribution is subtracted and its new one added in the
same transaction, so both always equal a GROUP BY over `rm_deals` (in whatever
order the events came) and reports sum a few rows instead of scanning deals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_reports.models import (
    DealCycle,
    DealDay,
    DealFact,
    DealMix,
    DealMixMonth,
    DealMonth,
    DealTotal,
    FunnelDay,
    FunnelFact,
    FunnelMonth,
    StayLength,
    StayLengthDay,
    StayLengthMonth,
)
from crm_reports.stats import bucket

DAYS = cast(Table, DealDay.__table__)
MONTHS = cast(Table, DealMonth.__table__)
MONTHS_KEY = ("month", "owner_id", "pipeline_id", "currency")
MIX_MONTHS = cast(Table, DealMixMonth.__table__)
MIX_MONTHS_KEY = ("month", "owner_id", "pipeline_id", "source", "amount_band")
TOTALS = cast(Table, DealTotal.__table__)
CYCLES = cast(Table, DealCycle.__table__)
CYCLES_KEY = ("owner_id", "pipeline_id", "bucket")
MIX = cast(Table, DealMix.__table__)
DEALS = cast(Table, DealFact.__table__)
KEY = ("day", "owner_id", "pipeline_id", "currency")
TOTALS_KEY = ("owner_id", "pipeline_id", "currency")
MIX_KEY = ("owner_id", "pipeline_id", "source", "amount_band")
COUNTERS = ("created", "won", "lost", "won_amount")
MIX_COUNTERS = ("won", "lost")
FUNNEL = cast(Table, FunnelFact.__table__)
FUNNEL_KEY = ("pipeline_id", "stage_id", "owner_id")
FUNNEL_COUNTERS = ("entered", "moved_on", "won", "onward", "finished", "stay_microseconds")
LENGTHS = cast(Table, StayLength.__table__)
LENGTHS_KEY = ("pipeline_id", "stage_id", "owner_id", "bucket")
FUNNEL_DAYS = cast(Table, FunnelDay.__table__)
FUNNEL_DAYS_KEY = ("pipeline_id", "day", "stage_id", "owner_id", "previous_day")
FUNNEL_DAYS_COUNTERS = ("stays", "finished", "won", "onward", "stay_microseconds")
FUNNEL_MONTHS = cast(Table, FunnelMonth.__table__)
FUNNEL_MONTHS_KEY = ("pipeline_id", "month", "stage_id", "owner_id", "previous_day")
LENGTH_DAYS = cast(Table, StayLengthDay.__table__)
LENGTH_DAYS_KEY = ("pipeline_id", "day", "stage_id", "bucket")
LENGTH_MONTHS = cast(Table, StayLengthMonth.__table__)
LENGTH_MONTHS_KEY = ("pipeline_id", "month", "stage_id", "bucket")
# `previous_day` of a deal's first stay in a stage (a key column cannot be NULL).
NO_PREVIOUS = date(1, 1, 1)
TARGETS: dict[str, tuple[Table, tuple[str, ...], tuple[str, ...]]] = {
    "days": (DAYS, KEY, COUNTERS),
    "months": (MONTHS, MONTHS_KEY, COUNTERS),
    "mix_months": (MIX_MONTHS, MIX_MONTHS_KEY, MIX_COUNTERS),
    "totals": (TOTALS, TOTALS_KEY, COUNTERS),
    "cycles": (CYCLES, CYCLES_KEY, ("won",)),
    "mix": (MIX, MIX_KEY, MIX_COUNTERS),
    "funnel": (FUNNEL, FUNNEL_KEY, FUNNEL_COUNTERS),
    "lengths": (LENGTHS, LENGTHS_KEY, ("stays",)),
    "funnel_days": (FUNNEL_DAYS, FUNNEL_DAYS_KEY, FUNNEL_DAYS_COUNTERS),
    "funnel_months": (FUNNEL_MONTHS, FUNNEL_MONTHS_KEY, FUNNEL_DAYS_COUNTERS),
    "length_days": (LENGTH_DAYS, LENGTH_DAYS_KEY, ("stays",)),
    "length_months": (LENGTH_MONTHS, LENGTH_MONTHS_KEY, ("stays",)),
}
# (target, key) -> counters
Contribution = dict[tuple[str, tuple[Any, ...]], dict[str, Any]]


def amount_band(amount: Decimal | None, currency: str) -> str:
    """The lead-mix size band: currency and the number of digits of the whole amount."""
    if amount is None:
        return "none"
    return f"{currency}:{len(str(int(abs(amount))))}"


def dialect_insert(session: AsyncSession) -> Any:
    bind = session.bind
    return (
        postgresql_insert
        if bind is not None and bind.dialect.name == "postgresql"
        else sqlite_insert
    )


def contribution(deal: Mapping[str, Any], sign: int) -> Contribution:
    """What one deal state adds to both aggregates (`sign` -1 to take it away)."""
    common = (deal["owner_id"], deal["pipeline_id"], deal["currency"])
    rows: Contribution = defaultdict(dict)

    def add(table: str, key: tuple[Any, ...], counter: str, value: Any) -> None:
        row = rows[(table, key)]
        row[counter] = row.get(counter, 0) + value

    created = deal["created_at"].astimezone(UTC).date()
    for target, key in (
        ("days", (created, *common)),
        ("months", (month_of(created), *common)),
        ("totals", common),
    ):
        add(target, key, "created", sign)
    closed, status = deal["closed_at"], deal["status"]
    if status in ("won", "lost") and closed is not None:
        day = closed.astimezone(UTC).date()
        for target, key in (
            ("days", (day, *common)),
            ("months", (month_of(day), *common)),
            ("totals", common),
        ):
            add(target, key, status, sign)
            if status == "won":
                add(target, key, "won_amount", sign * Decimal(deal["amount"] or 0))
        if deal.get("cycle_days") is not None:
            cycle = (deal["owner_id"], deal["pipeline_id"], bucket(deal["cycle_days"]))
            add("cycles", cycle, "won", sign)
        mix = (deal["owner_id"], deal["pipeline_id"], deal["source"] or "none", deal["amount_band"])
        add("mix", mix, status, sign)
        add("mix_months", (month_of(day), *mix), status, sign)
    return rows


def month_of(day: date) -> date:
    """The first day of the UTC month holding `day` (how month rows are keyed)."""
    return day.replace(day=1)


@dataclass
class Tiers:
    """A period's whole UTC days [first, last) split into whole months and the other days.

    `months`: month starts, `start` <= month < `end` (None: unbounded on that side;
    None as a whole: no whole month); `days`: the day ranges outside them.
    """

    months: tuple[date | None, date | None] | None
    days: list[tuple[date | None, date | None]]


def tiers(first: date | None, last: date | None) -> Tiers:
    if first and last and first >= last:
        return Tiers(None, [])
    start = None if first is None else month_of(first) if first.day == 1 else _next_month(first)
    end = None if last is None else month_of(last)
    if start and end and start >= end:
        return Tiers(None, [(first, last)])
    days: list[tuple[date | None, date | None]] = []
    if first and start and first < start:
        days.append((first, start))
    if end and last and end < last:
        days.append((end, last))
    return Tiers((start, end), days)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def in_range(column: Any, bounds: tuple[Any, Any]) -> list[Any]:
    """`column` within [start, end) (None: unbounded on that side)."""
    start, end = bounds
    return [*([column >= start] if start else []), *([column < end] if end else [])]


async def lock_deal(session: AsyncSession, deal_id: str) -> Mapping[str, Any] | None:
    """The stored state of a deal, locked until commit (two replicas must not both apply a delta)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        # A row lock cannot cover a deal not stored yet; an advisory lock on its id can.
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:id, 0))"), {"id": deal_id}
        )
    else:
        # SQLite begins a transaction only at the first write: write first, so the read
        # below happens under the database's single writer lock and sees the latest state.
        await session.execute(
            update(DEALS).where(DEALS.c.id == deal_id).values(version=DEALS.c.version)
        )
    found = await session.execute(select(DEALS).where(DEALS.c.id == deal_id))
    return cast(Mapping[str, Any] | None, found.mappings().first())


async def apply_delta(
    session: AsyncSession, old: Mapping[str, Any] | None, new: Mapping[str, Any]
) -> None:
    """Move both aggregates from the deal's old state to its new one."""
    parts = [contribution(state, sign) for state, sign in ((old, -1), (new, 1)) if state]
    await add_contributions(session, *parts)


def combined(*parts: Contribution) -> Contribution:
    total: Contribution = defaultdict(dict)
    for part in parts:
        for target, counters in part.items():
            for name, value in counters.items():
                total[target][name] = total[target].get(name, 0) + value
    return total


async def add_contributions(session: AsyncSession, *parts: Contribution) -> None:
    """Add these (signed) contributions to their aggregate rows, dropping rows that net to zero."""
    delta = combined(*parts)
    insert = dialect_insert(session)
    for (name, key), changes in delta.items():
        if not any(changes.values()):
            continue
        table, key_columns, counters = TARGETS[name]
        values = {c: changes.get(c, 0) for c in counters}
        statement = insert(table).values(**dict(zip(key_columns, key, strict=True)), **values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c[k] for k in key_columns],
                set_={c: table.c[c] + statement.excluded[c] for c in counters},
            )
        )
        # A row that nets to nothing is removed, so any order of events leaves the same rows.
        await session.execute(
            delete(table).where(
                and_(*(table.c[k] == v for k, v in zip(key_columns, key, strict=True))),
                *(table.c[c] == 0 for c in counters),
            )
        )


@dataclass
class Totals:
    """Deal counts of one owner in one currency over a period."""

    created: int = 0
    won: int = 0
    lost: int = 0
    won_amount: Decimal = field(default_factory=Decimal)


TotalsKey = tuple[str, str]  # owner, currency


def _day_bounds(moment: datetime, up: bool) -> date:
    """The first whole UTC day at or after (`up`) or the day holding `moment`."""
    moment = moment.astimezone(UTC)
    day = moment.date()
    midnight = datetime.combine(day, time(), UTC)
    return day + timedelta(days=1) if up and moment > midnight else day


def whole_days(
    period_from: datetime | None, period_to: datetime | None
) -> tuple[date | None, date | None]:
    """The period's whole UTC days, `first` <= day < `last` (None: unbounded on that side)."""
    first = _day_bounds(period_from, up=True) if period_from else None
    last = _day_bounds(period_to, up=False) if period_to else None
    return first, last


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


async def deal_totals(
    session: AsyncSession,
    *,
    scope: Callable[[Any, Any], list[Any]],
    period_from: datetime | None,
    period_to: datetime | None,
) -> dict[TotalsKey, Totals]:
    """Created (in the period), won and lost (closed in it) per owner and currency.

    Whole UTC months come from `rm_deal_months`, the other whole UTC days from
    `rm_deal_days`; the partial days at the edges of a period given in another
    time zone come from the deals themselves, so the answer is exact at any boundary.
    """
    totals: dict[TotalsKey, Totals] = defaultdict(Totals)
    if not (period_from or period_to):
        return await _all_time_totals(session, scope, totals)
    first = _day_bounds(period_from, up=True) if period_from else None
    last = _day_bounds(period_to, up=False) if period_to else None
    split = tiers(first, last)
    parts = [(DAYS, DAYS.c.day, bounds) for bounds in split.days]
    if split.months:
        parts.append((MONTHS, MONTHS.c.month, split.months))
    for table, column, bounds in parts:
        key_columns = (table.c.owner_id, table.c.currency)
        query = (
            select(
                *key_columns,
                func.sum(table.c.created),
                func.sum(table.c.won),
                func.sum(table.c.lost),
                func.sum(table.c.won_amount),
            )
            .where(*scope(table.c.owner_id, table.c.pipeline_id), *in_range(column, bounds))
            .group_by(*key_columns)
        )
        for owner, currency, created, won, lost, amount in (await session.execute(query)).all():
            t = totals[(owner, currency)]
            t.created += int(created)
            t.won += int(won)
            t.lost += int(lost)
            t.won_amount += Decimal(amount or 0)
    edges: list[tuple[datetime, datetime]] = []
    if period_from and first:
        edges.append((period_from, datetime.combine(first, time(), UTC)))
    if period_to and last:
        start = datetime.combine(last, time(), UTC)
        if period_from and first and first >= last:
            start = period_from  # the whole period lies inside one or two partial days
            edges = []
        edges.append((start, period_to))
    deal_key = (DEALS.c.owner_id, DEALS.c.currency)
    base = scope(DEALS.c.owner_id, DEALS.c.pipeline_id)
    for start, end in edges:
        if start >= end:
            continue
        created_q = (
            select(*deal_key, func.count())
            .where(*base, DEALS.c.created_at >= start, DEALS.c.created_at < end)
            .group_by(*deal_key)
        )
        for owner, currency, n in (await session.execute(created_q)).all():
            totals[(owner, currency)].created += int(n)
        closed_q = (
            select(*deal_key, DEALS.c.status, func.count(), func.sum(DEALS.c.amount))
            .where(
                *base,
                DEALS.c.status.in_(("won", "lost")),
                DEALS.c.closed_at >= start,
                DEALS.c.closed_at < end,
            )
            .group_by(*deal_key, DEALS.c.status)
        )
        for owner, currency, status, n, amount in (await session.execute(closed_q)).all():
            t = totals[(owner, currency)]
            if status == "won":
                t.won += int(n)
                t.won_amount += Decimal(amount or 0)
            else:
                t.lost += int(n)
    return totals


async def _all_time_totals(
    session: AsyncSession, scope: Callable[[Any, Any], list[Any]], totals: dict[TotalsKey, Totals]
) -> dict[TotalsKey, Totals]:
    key_columns = (TOTALS.c.owner_id, TOTALS.c.currency)
    query = (
        select(
            *key_columns,
            func.sum(TOTALS.c.created),
            func.sum(TOTALS.c.won),
            func.sum(TOTALS.c.lost),
            func.sum(TOTALS.c.won_amount),
        )
        .where(*scope(TOTALS.c.owner_id, TOTALS.c.pipeline_id))
        .group_by(*key_columns)
    )
    for owner, currency, created, won, lost, amount in (await session.execute(query)).all():
        totals[(owner, currency)] = Totals(int(created), int(won), int(lost), Decimal(amount or 0))
    return totals


async def win_rates_by_mix(session: AsyncSession) -> dict[tuple[str, str], tuple[int, int]]:
    """Won and closed deals per lead source and amount band, all time, over the whole base."""
    query = select(
        MIX.c.source, MIX.c.amount_band, func.sum(MIX.c.won), func.sum(MIX.c.lost)
    ).group_by(MIX.c.source, MIX.c.amount_band)
    history: dict[tuple[str, str], tuple[int, int]] = {}
    for source, band, won, lost in (await session.execute(query)).all():
        if won + lost:
            history[(source, band)] = (int(won), int(won) + int(lost))
    return history


async def closed_by_mix(
    session: AsyncSession,
    *,
    scope: Callable[[Any, Any], list[Any]],
    period_from: datetime | None,
    period_to: datetime | None,
) -> dict[tuple[str, str, str], int]:
    """Deals closed in the period per owner, lead source and amount band (for expected wins).

    All time from `rm_deal_mix`; a period's whole UTC months from `rm_deal_mix_months`
    and the rest of it from the closed deals (index only).
    """
    if not (period_from or period_to):
        query = select(
            MIX.c.owner_id, MIX.c.source, MIX.c.amount_band, func.sum(MIX.c.won + MIX.c.lost)
        ).where(*scope(MIX.c.owner_id, MIX.c.pipeline_id))
        rows = (await session.execute(query.group_by(*list(query.selected_columns)[:3]))).all()
        return {(owner, source, band): int(n) for owner, source, band, n in rows}
    found: dict[tuple[str, str, str], int] = defaultdict(int)
    split = tiers(*whole_days(period_from, period_to))
    edges: list[tuple[datetime | None, datetime | None]] = [(period_from, period_to)]
    if split.months:
        start, end = split.months
        m = MIX_MONTHS.c
        query = (
            select(m.owner_id, m.source, m.amount_band, func.sum(m.won + m.lost))
            .where(*scope(m.owner_id, m.pipeline_id), *in_range(m.month, split.months))
            .group_by(m.owner_id, m.source, m.amount_band)
        )
        for owner, source, band, n in (await session.execute(query)).all():
            found[(owner, source, band)] += int(n)
        edges = []
        if start:
            edges.append((period_from, midnight(start)))
        if end:
            edges.append((midnight(end), period_to))
    mix = (DEALS.c.owner_id, func.coalesce(DEALS.c.source, "none"), DEALS.c.amount_band)
    for edge in edges:
        if edge[0] and edge[1] and edge[0] >= edge[1]:
            continue
        query = (
            select(*mix, func.count())
            .where(
                *scope(DEALS.c.owner_id, DEALS.c.pipeline_id),
                DEALS.c.status.in_(("won", "lost")),
                *in_range(DEALS.c.closed_at, edge),
            )
            .group_by(*mix)
        )
        for owner, source, band, n in (await session.execute(query)).all():
            found[(owner, source, band)] += int(n)
    return dict(found)
