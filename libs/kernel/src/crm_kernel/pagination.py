"""Cursor (keyset) pagination and `?sort=field,-field` parsing for list endpoints."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import ColumnElement, DateTime, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.db import SqlColumn
from crm_kernel.problems import BadRequest

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `?cursor=` for the next one."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class SortKey:
    column: SqlColumn
    descending: bool = False


def parse_sort(
    sort: str | None,
    allowed: Mapping[str, SqlColumn],
    default: str,
    tiebreak: SqlColumn,
) -> list[SortKey]:
    """`name,-created_at` -> sort keys over whitelisted, non-null columns, ending with a unique one."""
    keys: list[SortKey] = []
    for part in (sort or default).split(","):
        name = part.strip()
        if not name:
            continue
        descending = name.startswith("-")
        column = allowed.get(name.lstrip("-+"))
        if column is None:
            raise BadRequest(
                f"Cannot sort by {name.lstrip('-+')!r}; allowed: {', '.join(sorted(allowed))}.",
                errors=[{"field": "sort", "location": "query", "message": "unknown sort field"}],
            )
        keys.append(SortKey(column, descending))
    if not any(k.column is tiebreak for k in keys):
        keys.append(SortKey(tiebreak, keys[-1].descending if keys else False))
    return keys


def encode_cursor(values: Sequence[Any]) -> str:
    raw = orjson.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """The sort values in a cursor, each checked against its column's type (never sent raw)."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError("wrong shape")
        return [_typed(k.column, v) for k, v in zip(keys, values, strict=True)]
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise BadRequest(
            "The cursor is not one this list gave out.",
            errors=[{"field": "cursor", "location": "query", "message": "invalid cursor"}],
        ) from exc


def _typed(column: SqlColumn, value: Any) -> Any:
    """A cursor value as its column's Python type; ValueError if it cannot be one."""
    column_type = getattr(column.type, "impl_instance", column.type)  # see through TypeDecorators
    if isinstance(column_type, DateTime):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive time in cursor")
        return moment
    try:
        expected = column_type.python_type
    except NotImplementedError:
        expected = object
    if expected is float and isinstance(value, int):
        return float(value)
    # bool is an int in Python; a cursor never mixes them up.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(
            f"cursor value of type {type(value).__name__}, expected {expected.__name__}"
        )
    return value


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the sort order (k1 > v1 OR k1 = v1 AND k2 > v2 ...)."""
    clauses = []
    for i, key in enumerate(keys):
        equal_before = [keys[j].column == values[j] for j in range(i)]
        beyond = key.column < values[i] if key.descending else key.column > values[i]
        clauses.append(and_(*equal_before, beyond))
    return or_(*clauses)


async def paginate(
    session: AsyncSession,
    query: Select[Any],
    keys: Sequence[SortKey],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """Run a keyset-paginated query: the rows of this page and the cursor of the next."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor:
        query = query.where(_after(keys, decode_cursor(cursor, keys)))
    query = query.order_by(*(k.column.desc() if k.descending else k.column.asc() for k in keys))
    rows = list((await session.execute(query.limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(_key_values(rows[-1], keys))


def _key_values(row: Any, keys: Sequence[SortKey]) -> list[Any]:
    """The sort values of a row, whether it selected columns or one ORM entity."""
    try:
        return [row._mapping[k.column] for k in keys]
    except KeyError:
        entity = row[0]
        return [getattr(entity, str(k.column.key)) for k in keys]
