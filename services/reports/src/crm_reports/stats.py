"""Small exact statistics the reports share (percentiles the SQL dialects do not agree on)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

DAY = 86400.0
CENT = Decimal("0.01")
# Length buckets in days, four per doubling from a minute up: bucket i holds
# BOUNDS[i-1] <= days < BOUNDS[i] (0: negative, the last: beyond). The same floats
# bound the index range an exact median reads, so bucket and range always agree.
BOUNDS = [0.0] + [(2 ** (i / 4) - 1) / 1440 for i in range(1, 100)]


def bucket(days: float) -> int:
    return bisect_right(BOUNDS, days)


def in_bucket(column: Any, index: int) -> list[ColumnElement[bool]]:
    """The rows of one length bucket (index range conditions on the stored length)."""
    conditions: list[ColumnElement[bool]] = [column.is_not(None)]
    if index > 0:
        conditions.append(column >= BOUNDS[index - 1])
    if index < len(BOUNDS):
        conditions.append(column < BOUNDS[index])
    return conditions


def middle_ranks(histogram: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """(bucket, offset within it) of the one or two middle values of a bucketed count."""
    total = sum(n for _, n in histogram)
    found = []
    for rank in sorted({(total - 1) // 2, total // 2}) if total else []:
        before = 0
        for index, n in histogram:
            if rank < before + n:
                found.append((index, rank - before))
                break
            before += n
    return found


def percentile(values: Sequence[float], share: float) -> float | None:
    """Linear interpolation between closest ranks (PostgreSQL `percentile_cont`, DuckDB `quantile_cont`)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    return round(value, 3)


def ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def money(value: Decimal | float | int | None) -> str:
    return str(Decimal(value or 0).quantize(CENT))


class days_between(FunctionElement[float]):
    """Days from the first time to the second, computed by the database (no rows of datetimes)."""

    type = Float()
    inherit_cache = True


@compiles(days_between)
def _days_between_postgresql(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(julianday({end}) - julianday({start}))"


class unindexed(FunctionElement[Any]):
    """The column, kept from choosing SQLite's index (`+column`); as is elsewhere.

    SQLite's planner cannot weigh a range's size, so it may sort a year of stays when
    walking an index in length order is cheaper (or walk all history for a few days'
    worth); the caller knows which and says so. PostgreSQL's estimates weigh it.
    """

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type  # comparisons bind their values as the column does


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def median_by(key: Any, value: Any, *conditions: Any) -> Select[Any]:
    """(key, median of value) per key, computed by the database from row numbers (portable SQL)."""
    inner = select(key.label("key"), value.label("value")).where(*conditions).subquery()
    ranked = select(
        inner.c.key,
        inner.c.value,
        func.row_number().over(partition_by=inner.c.key, order_by=inner.c.value).label("rank"),
        func.count().over(partition_by=inner.c.key).label("n"),
    ).subquery()
    middle = ((ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2)
    return (
        select(ranked.c.key, func.avg(ranked.c.value))
        .where(ranked.c.value.is_not(None), ranked.c.rank.in_(middle))
        .group_by(ranked.c.key)
    )


async def mean_of_middles(
    session: AsyncSession, lookups: Sequence[Select[Any]]
) -> dict[Any, float]:
    """Run `(key, value)` look-ups of middle-ranked rows as one UNION ALL: each key's
    median is its one middle value (odd count) or the mean of its two (even count)."""
    if not lookups:
        return {}
    values: dict[Any, list[float]] = defaultdict(list)
    for key, value in (await session.execute(union_all(*lookups))).all():
        values[key].append(float(value))
    return {key: sum(v) / len(v) for key, v in values.items()}
