"""The transactional outbox: events leave only with their commit, in order, whatever fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry import trace
from sqlalchemy import func, select, update

from crm_kernel.bus import Bus, OutgoingMessage, envelope_message
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.db import Database
from crm_kernel.events import Envelope, IntegrationEvent
from crm_kernel.outbox import OutboxRelay, add_event, add_event_data
from crm_kernel.tables import outbox
from crm_kernel.telemetry import setup_tracing, trace_headers
from crm_kernel.testing import Databases, NatsServer, wait_until

OpenDb = Callable[..., Awaitable[Database]]
ConnectBus = Callable[..., Awaitable[Bus]]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


def contact_created(i: int) -> ContactCreated:
    return ContactCreated(
        id=f"c{i}",
        first_name=f"Contact {i}",
        owner_id="u1",
        version=1,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )


async def write_events(db: Database, numbers: range) -> list[Envelope]:
    """One use case per event, as services write them."""
    written = []
    for i in numbers:
        async with db.transaction() as session:
            written.append(await add_event(session, contact_created(i)))
    return written


async def stored(bus: Bus, stream: str = "CRM_CONTACTS") -> list[tuple[Envelope, dict[str, str]]]:
    info = await bus.js.stream_info(stream)
    if info.state.messages == 0:
        return []
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        raw = await bus.js.get_msg(stream, seq)
        found.append((Envelope.from_bytes(raw.data or b""), dict(raw.headers or {})))
    return found


async def stored_count(bus: Bus) -> int:
    try:
        return (await bus.js.stream_info("CRM_CONTACTS")).state.messages
    except Exception:  # the server is down or just back: ask again
        return -1


async def pending_rows(db: Database) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        return (await session.execute(query)).scalar_one()


async def test_event_of_a_rolled_back_transaction_is_never_published(
    open_db: OpenDb, bus: Bus
) -> None:
    db = await open_db()
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await add_event(session, contact_created(1))
            raise RuntimeError("the use case failed after writing its event")

    relay = OutboxRelay(db, bus)
    assert await relay.relay_once() == 0
    assert await stored(bus) == []
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(outbox))).scalar_one() == 0


async def test_relay_publishes_committed_events_in_order_with_their_trace(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    setup_tracing("kernel-tests")
    db = await open_db()
    spawn(OutboxRelay(db, bus, poll_interval=5).run())

    with trace.get_tracer("test").start_as_current_span("create contacts") as span:
        written = await write_events(db, range(20))
    trace_id = format(span.get_span_context().trace_id, "032x")

    # Woken by the commits: far sooner than the 5 s poll.
    await wait_until(lambda: _count_is(bus, 20), timeout=4, message="all 20 published")
    messages = await stored(bus)
    assert [e.id for e, _ in messages] == [e.id for e in written]
    for envelope, headers in messages:
        assert headers["Nats-Msg-Id"] == envelope.id
        assert headers["traceparent"].split("-")[1] == trace_id
    await wait_until(lambda: _none_pending(db), message="rows marked published")


async def _count_is(bus: Bus, n: int) -> bool:
    return await stored_count(bus) == n


async def _none_pending(db: Database) -> bool:
    return await pending_rows(db) == 0


class CountingBus(Bus):
    """The real bus, counting the messages put on the wire."""

    sent = 0

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[Any]:
        self.sent += len(messages)
        return await super().send_batch(messages)


async def test_relay_pipelines_batches_in_order_and_sends_each_row_once(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db()
    async with db.transaction() as session:
        written = [await add_event(session, contact_created(i)) for i in range(95)]
    counting = CountingBus(bus.nc, bus.js)
    # Batches of 10, the next one read and sent while the previous one's acks come.
    spawn(OutboxRelay(db, counting, batch_size=10, pipeline=3, poll_interval=0.05).run())

    await wait_until(lambda: _none_pending(db), message="every row marked published")
    assert [e.id for e, _ in await stored(bus)] == [e.id for e in written]
    # A batch in flight is not read again (SQLite has no row locks to skip it).
    assert counting.sent == 95


async def test_relay_started_after_a_crash_publishes_rows_left_pending(
    open_db: OpenDb, connect_bus: ConnectBus, spawn: Spawn
) -> None:
    crashed = await open_db()
    written = await write_events(crashed, range(5))  # committed, but no relay ran
    await crashed.dispose()

    restarted = await open_db()
    bus = await connect_bus("restarted")
    assert await pending_rows(restarted) == 5
    spawn(OutboxRelay(restarted, bus, poll_interval=0.05).run())

    await wait_until(lambda: _count_is(bus, 5), message="pending rows published")
    assert [e.id for e, _ in await stored(bus)] == [e.id for e in written]
    await wait_until(lambda: _none_pending(restarted), message="rows marked published")


async def test_relay_crashed_between_publishing_and_marking_does_not_store_twice(
    open_db: OpenDb, bus: Bus
) -> None:
    db = await open_db()
    written = await write_events(db, range(4))
    # The crashed relay got as far as publishing the rows, not as far as marking them.
    async with db.session() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    await bus.publish_batch([OutgoingMessage(r.subject, r.payload, r.headers) for r in rows])

    assert await OutboxRelay(db, bus).relay_once() == 4
    assert [e.id for e, _ in await stored(bus)] == [e.id for e in written]
    assert await pending_rows(db) == 0


async def test_relay_recovers_when_nats_restarts(
    open_db: OpenDb, bus: Bus, nats_server: NatsServer, spawn: Spawn
) -> None:
    db = await open_db()
    spawn(OutboxRelay(db, bus, poll_interval=0.05).run())
    before = await write_events(db, range(3))
    await wait_until(lambda: _count_is(bus, 3), message="published before the outage")

    nats_server.stop()
    await wait_until(lambda: not bus.nc.is_connected, message="bus sees the outage")
    during = await write_events(db, range(3, 6))
    # The relay was woken and tried to publish into the void.
    await wait_until(lambda: bus.nc.pending_data_size > 0, message="a publish attempt")
    nats_server.start()

    await wait_until(lambda: _count_is(bus, 6), timeout=30, message="published after restart")
    assert [e.id for e, _ in await stored(bus)] == [e.id for e in before + during]
    await wait_until(lambda: _none_pending(db), message="rows marked published")


async def test_two_relays_on_postgresql_claim_each_row_once(
    databases: Databases, open_db: OpenDb, connect_bus: ConnectBus
) -> None:
    if databases.backend != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED claims need PostgreSQL; SQLite runs one relay")
    rows = 300
    writer = await open_db()
    async with writer.transaction() as session:
        for i in range(rows):
            await add_event(session, contact_created(i))

    async def drain(relay: OutboxRelay) -> list[int]:
        claimed = []
        while published := await relay.relay_once():
            claimed.append(published)
        return claimed

    first = OutboxRelay(await open_db(), await connect_bus("relay-1"), batch_size=10)
    second = OutboxRelay(await open_db(), await connect_bus("relay-2"), batch_size=10)
    claimed_first, claimed_second = await asyncio.gather(drain(first), drain(second))

    assert sum(claimed_first) + sum(claimed_second) == rows
    assert claimed_first and claimed_second, "both relays should have claimed batches"
    assert await stored_count(first.bus) == rows
    assert await pending_rows(writer) == 0


class ContactArchived(IntegrationEvent):
    """An event type no contract declares, so no stream takes its subject."""

    type = "crm.contacts.contact.archived"

    id: str


async def test_an_undeclared_event_type_is_refused_before_anything_is_written(
    open_db: OpenDb,
) -> None:
    db = await open_db()
    with pytest.raises(ValueError, match="not a declared contract"):
        async with db.transaction() as session:
            await add_event(session, ContactArchived(id="c0"))
    assert await pending_rows(db) == 0


async def test_a_refused_row_stays_pending_and_does_not_hold_back_the_others(
    open_db: OpenDb, bus: Bus
) -> None:
    db = await open_db()
    before = await write_events(db, range(2))
    # A row no stream takes (e.g. written by a version whose contract was since removed).
    async with db.transaction() as session:
        await session.execute(
            outbox.insert().values(
                event_id="bad",
                subject="crm.nowhere.thing.happened",
                payload=b"{}",
                headers={"Nats-Msg-Id": "bad"},
                created_at=datetime.now(UTC),
            )
        )
    after = await write_events(db, range(2, 4))
    relay = OutboxRelay(db, bus)
    with pytest.raises(Exception):  # noqa: B017 - whatever JetStream answered
        await relay.relay_once()
    assert [e.id for e, _ in await stored(bus)] == [e.id for e in before + after]
    # Published rows are marked (never sent again); only the refused one waits.
    assert await pending_rows(db) == 1


async def _pending_is(db: Database, n: int) -> bool:
    return await pending_rows(db) == n


async def test_prune_forgets_rows_published_long_ago_but_never_pending_ones(
    open_db: OpenDb, bus: Bus
) -> None:
    db = await open_db()
    relay = OutboxRelay(db, bus, keep_published=timedelta(days=3))
    await write_events(db, range(3))
    assert await relay.relay_once() == 3
    async with db.transaction() as session:
        await session.execute(
            update(outbox)
            .where(outbox.c.id == 1)
            .values(published_at=datetime.now(UTC) - timedelta(days=4))
        )
    await write_events(db, range(3, 4))  # not published yet

    await relay.prune()

    async with db.session() as session:
        left = (await session.execute(select(outbox.c.id).order_by(outbox.c.id))).scalars()
        assert list(left) == [2, 3, 4]
    assert await pending_rows(db) == 1


async def test_prepared_event_data_is_stored_exactly_as_the_event_model_would_be(
    open_db: OpenDb,
) -> None:
    db = await open_db()
    events = [
        contact_created(1),
        contact_created(2).model_copy(update={"email": "ünï@example.com"}),
    ]
    sent = [("subject-1", None), (None, "someone")]
    async with db.transaction() as session:
        for event, (subject, actor) in zip(events, sent, strict=True):
            data = event.model_dump(mode="json")
            await add_event_data(session, ContactCreated, [(data, subject)], actor=actor)
    async with db.session() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()

    assert len(rows) == 2
    for row, event, (subject, actor) in zip(rows, events, sent, strict=True):
        written = Envelope.from_bytes(row.payload)
        # The kernel's own envelope and message for the same event, id and time.
        expected = event.envelope(subject=subject, actor=actor).model_copy(
            update={"id": row.event_id, "time": written.time}
        )
        message = envelope_message(expected, trace_headers())
        assert (row.subject, row.payload, row.headers) == (
            message.subject,
            message.payload,
            dict(message.headers),
        )


async def test_prepared_data_of_an_undeclared_type_is_refused(open_db: OpenDb) -> None:
    db = await open_db()
    with pytest.raises(ValueError, match="not a declared contract"):
        async with db.transaction() as session:
            await add_event_data(session, ContactArchived, [({"id": "c0"}, None)])
    assert await pending_rows(db) == 0
