"""The database: aware UTC times on every backend, one transaction per use case, idempotent inserts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import StatementError

from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.db import Database, UtcDateTime, insert_ignoring_duplicates
from crm_kernel.outbox import add_event

OpenDb = Callable[..., Awaitable[Database]]

toy = MetaData()
stamps = Table(
    "stamps",
    toy,
    Column("id", Integer, primary_key=True),
    Column("label", String(20), nullable=False),
    Column("at", UtcDateTime()),
)


async def labels(db: Database) -> dict[int, str]:
    async with db.session() as session:
        return {i: label for i, label in await session.execute(select(stamps.c.id, stamps.c.label))}


async def test_times_come_back_aware_utc_and_equal(open_db: OpenDb) -> None:
    db = await open_db(toy)
    moscow = datetime(2026, 5, 1, 15, 30, 0, 250000, tzinfo=timezone(timedelta(hours=3)))
    async with db.transaction() as session:
        await session.execute(insert(stamps).values(id=1, label="a", at=moscow))
        await session.execute(insert(stamps).values(id=2, label="b", at=None))
    async with db.session() as session:
        at, empty = (await session.execute(select(stamps.c.at).order_by(stamps.c.id))).scalars()
    assert at == moscow and at.utcoffset() == timedelta(0) and at.tzinfo is not None
    assert at.hour == 12 and at.microsecond == 250000
    assert empty is None


async def test_naive_time_is_refused(open_db: OpenDb) -> None:
    db = await open_db(toy)
    with pytest.raises(StatementError, match="naive datetime"):
        async with db.transaction() as session:
            await session.execute(insert(stamps).values(id=1, label="a", at=datetime(2026, 1, 1)))


async def test_failed_use_case_leaves_nothing_behind(open_db: OpenDb) -> None:
    db = await open_db(toy)
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as session:
            await session.execute(insert(stamps).values(id=1, label="a"))
            _ = 1 / 0
    assert await labels(db) == {}


async def test_outbox_commit_callback_runs_after_commit_only(open_db: OpenDb) -> None:
    db = await open_db(toy)
    calls: list[str] = []
    db.on_outbox_commit(lambda: calls.append("woken"))
    event = ContactCreated(
        id="c1",
        first_name="A",
        owner_id="u1",
        version=1,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )

    async with db.transaction() as session:
        await session.execute(insert(stamps).values(id=1, label="no event"))
    assert calls == []
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await add_event(session, event)
            raise RuntimeError("rolled back")
    assert calls == []
    async with db.transaction() as session:
        await add_event(session, event)
    assert calls == ["woken"]


async def test_insert_ignoring_duplicates_keeps_the_first_row(open_db: OpenDb) -> None:
    db = await open_db(toy)
    async with db.transaction() as session:
        await insert_ignoring_duplicates(session, stamps, [{"id": 1, "label": "first"}])
    async with db.transaction() as session:
        await insert_ignoring_duplicates(
            session, stamps, [{"id": 1, "label": "again"}, {"id": 2, "label": "new"}]
        )
        await insert_ignoring_duplicates(session, stamps, [])
    assert await labels(db) == {1: "first", 2: "new"}
