"""Keyset pagination: every row exactly once across pages, in the requested order."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kernel.db import Database, UtcDateTime
from crm_kernel.pagination import decode_cursor, paginate, parse_sort
from crm_kernel.problems import BadRequest

OpenDb = Callable[..., Awaitable[Database]]

toy = MetaData()
items = Table(
    "items",
    toy,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
SORTABLE = {"name": items.c.name, "created_at": items.c.created_at}


class Base(DeclarativeBase):
    pass


class Item(Base):
    """The same table as an ORM entity, as the services query it."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
KEYS = parse_sort("-created_at,name", SORTABLE, default="-created_at", tiebreak=items.c.id)


@pytest.fixture
async def db(open_db: OpenDb) -> Database:
    db = await open_db(toy)
    # 90 rows, only 3 distinct times and 4 names: whole pages share the same sort values.
    rows = [
        {"id": i, "name": "abcd"[i % 4], "created_at": T0 + timedelta(seconds=i % 3)}
        for i in range(90)
    ]
    async with db.transaction() as session:
        await session.execute(insert(items), rows)
    return db


async def walk(db: Database, sort: str | None, limit: int) -> list[Any]:
    keys = parse_sort(sort, SORTABLE, default="-created_at", tiebreak=items.c.id)
    seen: list[Any] = []
    cursor = None
    async with db.session() as session:
        for _ in range(100):
            rows, cursor = await paginate(session, select(items), keys, limit=limit, cursor=cursor)
            assert len(rows) <= limit
            seen.extend(rows)
            if cursor is None:
                return seen
    raise AssertionError("pagination did not end")


async def all_rows(db: Database) -> list[Any]:
    async with db.session() as session:
        return list((await session.execute(select(items))).all())


async def test_walking_pages_with_ties_and_mixed_directions_yields_each_row_once_in_order(
    db: Database,
) -> None:
    expected = sorted(await all_rows(db), key=lambda r: r.id)
    expected.sort(key=lambda r: r.name)
    expected.sort(key=lambda r: r.created_at, reverse=True)

    for limit in (1, 7, 30, 89, 90, 200):
        seen = await walk(db, "-created_at,name", limit)
        assert [r.id for r in seen] == [r.id for r in expected], f"pages of {limit}"


async def test_walking_pages_of_orm_entities_sorted_by_orm_attributes(db: Database) -> None:
    keys = parse_sort(
        "-created_at,name", {"name": Item.name, "created_at": Item.created_at}, "name", Item.id
    )
    seen: list[Item] = []
    cursor = None
    async with db.session() as session:
        while True:
            rows, cursor = await paginate(session, select(Item), keys, limit=7, cursor=cursor)
            seen.extend(row[0] for row in rows)
            if cursor is None:
                break
    expected = sorted(await all_rows(db), key=lambda r: r.id)
    expected.sort(key=lambda r: r.name)
    expected.sort(key=lambda r: r.created_at, reverse=True)
    assert [item.id for item in seen] == [r.id for r in expected]


async def test_default_and_ascending_sorts_walk_every_row_once(db: Database) -> None:
    by_default = await walk(db, None, 8)
    assert [r.id for r in by_default] == [
        r.id for r in sorted(await all_rows(db), key=lambda r: (-r.created_at.timestamp(), -r.id))
    ]
    by_name = await walk(db, "+name,created_at", 11)
    assert [r.id for r in by_name] == [
        r.id for r in sorted(await all_rows(db), key=lambda r: (r.name, r.created_at, r.id))
    ]


async def test_times_come_back_aware_utc_through_the_cursor(db: Database) -> None:
    seen = await walk(db, "created_at", 4)
    assert all(r.created_at.tzinfo is not None for r in seen)
    assert seen[0].created_at == T0


def cursor_of(values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!not-base64!!",
        base64.urlsafe_b64encode(b"not json").decode(),
        cursor_of({"created_at": "2026-03-01"}),
        cursor_of(["2026-03-01T12:00:00+00:00", "a"]),  # one value short
        cursor_of(["yesterday", "a", 3]),
        cursor_of([42, "a", 3]),
    ],
    ids=["garbage", "not-json", "not-a-list", "wrong-length", "not-a-time", "number-for-time"],
)
def test_tampered_cursor_is_bad_request_naming_cursor(cursor: str) -> None:
    with pytest.raises(BadRequest) as raised:
        decode_cursor(cursor, KEYS)
    assert [e["field"] for e in raised.value.errors] == ["cursor"]


async def test_tampered_cursor_given_to_paginate_is_bad_request(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(BadRequest) as raised:
            await paginate(session, select(items), KEYS, limit=10, cursor="e30")
    assert raised.value.errors[0]["field"] == "cursor"


async def test_well_formed_cursor_with_wrong_value_types_is_bad_request(db: Database) -> None:
    for values in (["2026-03-01T12:00:00", "a", 3], ["2026-03-01T12:00:00+00:00", 7, "x"]):
        with pytest.raises(BadRequest) as raised:
            async with db.session() as session:
                await paginate(session, select(items), KEYS, limit=10, cursor=cursor_of(values))
        assert [e["field"] for e in raised.value.errors] == ["cursor"], values


@pytest.mark.parametrize("sort", ["email", "-name,password", "name;drop table items"])
def test_unknown_sort_field_is_bad_request_naming_sort(sort: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_sort(sort, SORTABLE, default="-created_at", tiebreak=items.c.id)
    assert [e["field"] for e in raised.value.errors] == ["sort"]


async def test_page_size_is_kept_between_1_and_200(db: Database) -> None:
    async with db.transaction() as session:
        more = [{"id": i, "name": "e", "created_at": T0} for i in range(90, 250)]
        await session.execute(insert(items), more)
    async with db.session() as session:
        for asked, given in ((0, 1), (-5, 1), (199, 199), (1000, 200)):
            rows, _ = await paginate(session, select(items), KEYS, limit=asked, cursor=None)
            assert len(rows) == given, asked
