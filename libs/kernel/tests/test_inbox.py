"""The inbox: which events a consumer applied, kept in the transaction of the effect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from crm_kernel import inbox
from crm_kernel.db import Database
from crm_kernel.tables import inbox as inbox_table

OpenDb = Callable[..., Awaitable[Database]]


async def applied(db: Database, consumer: str, ids: list[str]) -> set[str]:
    async with db.session() as session:
        return await inbox.processed_ids(session, consumer, ids)


async def test_recorded_ids_are_known_per_consumer(open_db: OpenDb) -> None:
    db = await open_db()
    async with db.transaction() as session:
        await inbox.record(session, "reports", ["e1", "e2"])
        await inbox.record(session, "deals", ["e2"])

    assert await applied(db, "reports", ["e1", "e2", "e3"]) == {"e1", "e2"}
    assert await applied(db, "deals", ["e1", "e2", "e3"]) == {"e2"}
    assert await applied(db, "reports", []) == set()


async def test_recording_an_applied_id_again_fails_the_transaction(open_db: OpenDb) -> None:
    db = await open_db()
    async with db.transaction() as session:
        await inbox.record(session, "reports", ["e1"])
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await inbox.record(session, "reports", ["e2", "e1"])
    assert await applied(db, "reports", ["e1", "e2"]) == {"e1"}


async def test_forget_clears_one_consumer_and_prune_only_old_entries(open_db: OpenDb) -> None:
    db = await open_db()
    async with db.transaction() as session:
        await inbox.record(session, "reports", ["old", "new"])
        await inbox.record(session, "deals", ["d1"])
        await session.execute(
            update(inbox_table)
            .where(inbox_table.c.event_id == "old")
            .values(processed_at=datetime.now(UTC) - timedelta(days=30))
        )

    async with db.transaction() as session:
        await inbox.prune(session, timedelta(days=7))
    assert await applied(db, "reports", ["old", "new"]) == {"new"}

    async with db.transaction() as session:
        await inbox.forget(session, "reports")
    assert await applied(db, "reports", ["old", "new"]) == set()
    assert await applied(db, "deals", ["d1"]) == {"d1"}
