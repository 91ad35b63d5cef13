"""Durable consumers: each event applied once, failures retried then dead-lettered, replicas share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update

from crm_kernel.bus import Bus, envelope_message
from crm_kernel.consumer import (
    BATCH_BYTES,
    BatchContext,
    Consumer,
    EventContext,
    Handlers,
    PoisonMessage,
)
from crm_kernel.contracts import DEAD_LETTER_STREAM
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.db import Database
from crm_kernel.dlq import DeadLetter, list_dead_letters, replay
from crm_kernel.events import Envelope, IntegrationEvent
from crm_kernel.testing import Databases, NatsServer, wait_until

OpenDb = Callable[..., Awaitable[Database]]
ConnectBus = Callable[..., Awaitable[Bus]]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]

STREAM = "CRM_CONTACTS"
CONSUMER = "toy"

toy = MetaData()
# Every application of an event, with the replica that applied it.
applied = Table(
    "applied",
    toy,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(40), nullable=False),
    Column("replica", String(40), nullable=False),
)
counters = Table(
    "counters",
    toy,
    Column("key", String(40), primary_key=True),
    Column("n", Integer, nullable=False),
)


class Tick(IntegrationEvent):
    """Test-only event on a declared contacts subject, so it lands in CRM_CONTACTS."""

    type = ContactCreated.type

    key: str


def toy_handlers(replica: str = "r1", failing: Callable[[str], bool] = lambda _: False) -> Handlers:
    handlers = Handlers(CONSUMER)

    @handlers.on(Tick)
    async def on_tick(event: Tick, ctx: EventContext) -> None:
        await ctx.session.execute(insert(applied).values(key=event.key, replica=replica))
        await ctx.session.execute(
            update(counters).where(counters.c.key == event.key).values(n=counters.c.n + 1)
        )
        if failing(event.key):
            raise RuntimeError(f"cannot apply {event.key}")

    return handlers


async def publish(bus: Bus, envelope: Envelope, msg_id: str | None = None) -> None:
    await bus.js.publish(
        envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": msg_id or envelope.id}
    )


async def applications(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(select(applied.c.key, func.count()).group_by(applied.c.key))
        return {key: n for key, n in rows}


async def applied_keys(db: Database, keys: set[str]) -> bool:
    return keys <= set(await applications(db))


async def settled(bus: Bus) -> bool:
    """Everything in the stream was delivered and acked."""
    try:
        info = await bus.js.consumer_info(STREAM, CONSUMER)
    except NotFoundError:  # the consumer has not started yet
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


async def acked_through(bus: Bus, sequence: int) -> bool:
    """Every message up to this stream sequence was acked."""
    info = await bus.js.consumer_info(STREAM, CONSUMER)
    return info.ack_floor.stream_seq >= sequence and info.num_ack_pending == 0


async def dead_letters(bus: Bus) -> list[DeadLetter]:
    return await list_dead_letters(bus, CONSUMER)


async def test_event_delivered_twice_is_applied_once_and_both_copies_acked(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    async with db.transaction() as session:
        await session.execute(insert(counters).values(key="k", n=0))
    envelope = Tick(key="k").envelope()
    # Two stored copies of one event (a producer retried past the duplicate window).
    await publish(bus, envelope, "copy-1")
    await publish(bus, envelope, "copy-2")
    assert (await bus.js.stream_info(STREAM)).state.messages == 2

    spawn(Consumer(db, bus, toy_handlers()).run())
    await wait_until(lambda: settled(bus), message="both copies acked")
    # A third copy arriving after the first was applied: skipped thanks to the inbox.
    await publish(bus, envelope, "copy-3")
    await wait_until(lambda: acked_through(bus, 3), message="late copy acked")

    async with db.session() as session:
        counter = (await session.execute(select(counters.c.n))).scalar_one()
    assert counter == 1
    assert await applications(db) == {"k": 1}
    info = await bus.js.consumer_info(STREAM, CONSUMER)
    assert info.num_redelivered == 0


async def dead_letter_one_of(
    db: Database, bus: Bus, spawn: Spawn, fixed: asyncio.Event
) -> DeadLetter:
    """Run a consumer whose handler fails for `poison` until `fixed`; return its dead letter."""
    handlers = toy_handlers(failing=lambda key: key == "poison" and not fixed.is_set())
    spawn(Consumer(db, bus, handlers, max_deliveries=3, backoff=(0.05,)).run())
    await publish(bus, Tick(key="poison").envelope())
    for i in range(5):
        await publish(bus, Tick(key=f"good-{i}").envelope())

    letters = await wait_until(lambda: dead_letters(bus), message="a dead letter")
    await wait_until(lambda: settled(bus), message="the stream consumed")
    assert len(letters) == 1
    return letters[0]


async def test_event_that_keeps_failing_is_dead_lettered_after_max_deliveries(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    letter = await dead_letter_one_of(db, bus, spawn, asyncio.Event())

    assert letter.consumer == CONSUMER
    assert letter.deliveries == 3
    assert letter.error == "RuntimeError: cannot apply poison"
    assert letter.subject == Tick.type
    assert letter.headers["Crm-Original-Stream"] == STREAM
    assert letter.headers["Crm-Original-Sequence"] == "1"
    assert Envelope.from_bytes(letter.data).event(Tick) == Tick(key="poison")
    # The events behind it were not held back, and the poison left no trace.
    assert await applications(db) == {f"good-{i}": 1 for i in range(5)}


async def test_replayed_dead_letter_is_applied_once_and_leaves_the_dead_letter_stream(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    fixed = asyncio.Event()
    letter = await dead_letter_one_of(db, bus, spawn, fixed)

    fixed.set()  # the handler's bug is fixed and deployed
    await replay(bus, letter)

    await wait_until(lambda: applied_keys(db, {"poison"}), message="the replay applied")
    await wait_until(lambda: settled(bus), message="the replay acked")
    assert await dead_letters(bus) == []
    assert await applications(db) == {"poison": 1} | {f"good-{i}": 1 for i in range(5)}


async def test_replicas_share_the_work_and_apply_each_event_once(
    open_db: OpenDb, connect_bus: ConnectBus, spawn: Spawn
) -> None:
    db_one, db_two = await open_db(toy), await open_db()
    bus_one, bus_two = await connect_bus("replica-1"), await connect_bus("replica-2")
    for replica, db, bus in (("r1", db_one, bus_one), ("r2", db_two, bus_two)):
        spawn(Consumer(db, bus, toy_handlers(replica), batch_size=10).run())

    async def both_waiting() -> bool:
        try:
            return (await bus_one.js.consumer_info(STREAM, CONSUMER)).num_waiting >= 2
        except NotFoundError:  # not created yet
            return False

    await wait_until(both_waiting, message="both replicas pulling")
    keys = [f"e{i}" for i in range(200)]
    await bus_one.publish_batch([envelope_message(Tick(key=k).envelope()) for k in keys])

    await wait_until(lambda: applied_keys(db_one, set(keys)), timeout=20, message="all applied")
    await wait_until(lambda: settled(bus_one), message="all acked")
    assert await applications(db_one) == dict.fromkeys(keys, 1)
    async with db_one.session() as session:
        rows = await session.execute(select(applied.c.replica).distinct())
        replicas = set(rows.scalars())
    assert replicas == {"r1", "r2"}


async def test_one_failing_message_does_not_hold_back_the_rest_of_its_batch(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    keys = [f"e{i}" for i in range(10)]
    # All stored before the consumer starts, so they come in one batch.
    for key in keys:
        await publish(bus, Tick(key=key).envelope())

    handlers = toy_handlers(failing=lambda key: key == "e4")
    spawn(Consumer(db, bus, handlers, max_deliveries=5, backoff=(30.0,)).run())

    good = set(keys) - {"e4"}
    await wait_until(lambda: applied_keys(db, good), message="the rest of the batch applied")
    assert await applications(db) == dict.fromkeys(sorted(good), 1)

    async def only_e4_unacked() -> bool:
        info = await bus.js.consumer_info(STREAM, CONSUMER)
        return info.num_ack_pending == 1 and info.num_pending == 0

    await wait_until(only_e4_unacked, message="all but e4 acked")


async def test_unreadable_payload_goes_straight_to_the_dead_letter_stream(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    spawn(Consumer(db, bus, toy_handlers(), max_deliveries=5).run())
    await bus.js.publish(Tick.type, b"\x00 not json", headers={"Nats-Msg-Id": "garbage"})
    await publish(bus, Tick(key="after").envelope())

    letters = await wait_until(lambda: dead_letters(bus), message="a dead letter")
    await wait_until(lambda: applied_keys(db, {"after"}), message="the next event applied")
    await wait_until(lambda: settled(bus), message="both acked")

    assert len(letters) == 1
    assert letters[0].deliveries == 1
    assert letters[0].error.startswith("unreadable envelope")
    assert letters[0].data == b"\x00 not json"
    assert letters[0].subject == Tick.type
    assert (await bus.js.stream_info(DEAD_LETTER_STREAM)).state.messages == 1


def batch_handlers(
    failing: Callable[[str], bool] = lambda _: False,
) -> tuple[Handlers, list[list[str]]]:
    handlers = Handlers(CONSUMER)
    calls: list[list[str]] = []

    @handlers.on_batch(Tick)
    async def on_ticks(events: list[Tick], ctx: BatchContext) -> None:
        assert [e.id for e in ctx.envelopes] and len(ctx.envelopes) == len(events)
        calls.append([e.key for e in events])
        await ctx.session.execute(
            insert(applied), [{"key": e.key, "replica": "r1"} for e in events]
        )
        if any(failing(e.key) for e in events):
            raise RuntimeError("cannot apply the batch")

    return handlers, calls


async def test_batch_handler_gets_the_events_of_a_batch_together_in_order(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    keys = [f"e{i:02}" for i in range(30)]
    await bus.publish_batch([envelope_message(Tick(key=k).envelope()) for k in keys])
    handlers, calls = batch_handlers()
    spawn(Consumer(db, bus, handlers).run())

    async def all_applied() -> bool:
        return await applications(db) == dict.fromkeys(keys, 1)

    # Applied first: before the consumer exists, the stream looks settled too.
    await wait_until(all_applied, message="every event applied")
    await wait_until(lambda: settled(bus), message="all acked")
    assert [key for call in calls for key in call] == keys
    assert max(len(call) for call in calls) > 1
    assert await applications(db) == dict.fromkeys(keys, 1)


async def test_large_messages_are_applied_a_few_per_transaction_not_a_whole_fetch(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    """A command carrying many recipients is large: a batch of 256 would be one huge transaction."""
    db = await open_db(toy)
    keys = [f"big{i:02}" for i in range(12)]
    padding = "x" * 700_000
    await bus.publish_batch(
        [envelope_message(Tick(key=k, padding=padding).envelope()) for k in keys]
    )
    handlers, calls = batch_handlers()
    spawn(Consumer(db, bus, handlers).run())

    async def all_applied() -> bool:
        return await applications(db) == dict.fromkeys(keys, 1)

    await wait_until(all_applied, message="every large event applied")
    assert [key for call in calls for key in call] == keys
    # About BATCH_BYTES (4 MiB) per transaction: five of these at most, never all twelve.
    assert max(len(call) for call in calls) <= BATCH_BYTES // len(padding)


async def test_batch_handler_failing_on_one_event_still_applies_the_others_once(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    keys = [f"e{i:02}" for i in range(10)]
    await bus.publish_batch([envelope_message(Tick(key=k).envelope()) for k in keys])
    handlers, _ = batch_handlers(failing=lambda key: key == "e03")
    spawn(Consumer(db, bus, handlers, max_deliveries=2, backoff=(0.05,)).run())

    letters = await wait_until(lambda: dead_letters(bus), message="e03 dead-lettered")
    await wait_until(lambda: settled(bus), message="all acked")
    assert await applications(db) == {k: 1 for k in keys if k != "e03"}
    assert Envelope.from_bytes(letters[0].data).event(Tick) == Tick(key="e03")


async def test_consumer_resumes_after_nats_restarts(
    databases: Databases, open_db: OpenDb, bus: Bus, spawn: Spawn, nats_server: NatsServer
) -> None:
    if databases.backend != "sqlite":
        pytest.skip("a bus behaviour: one database backend is enough")
    db = await open_db(toy)
    spawn(Consumer(db, bus, toy_handlers()).run())
    await publish(bus, Tick(key="before").envelope())
    await wait_until(lambda: applied_keys(db, {"before"}), message="applied before the outage")

    nats_server.stop()
    await wait_until(lambda: not bus.nc.is_connected, message="the outage noticed")
    nats_server.start()
    await wait_until(lambda: bus.nc.is_connected, timeout=10, message="reconnected")
    await wait_until(lambda: _published(bus, Tick(key="after").envelope()), message="published")

    await wait_until(
        lambda: applied_keys(db, {"after"}), timeout=20, message="applied after the restart"
    )
    assert await applications(db) == {"before": 1, "after": 1}


async def _published(bus: Bus, envelope: Envelope) -> bool:
    try:
        await publish(bus, envelope)
    except Exception:  # JetStream not ready yet after the restart
        return False
    return True


async def test_dead_letter_error_in_another_alphabet_reads_back_as_text(
    open_db: OpenDb, bus: Bus, spawn: Spawn
) -> None:
    db = await open_db(toy)
    handlers = Handlers(CONSUMER)

    @handlers.on(Tick)
    async def on_tick(event: Tick, ctx: EventContext) -> None:
        raise LookupError(f"нет контакта «{event.key}»")

    spawn(Consumer(db, bus, handlers, max_deliveries=1).run())
    await publish(bus, Tick(key="Анна").envelope())

    letters = await wait_until(lambda: dead_letters(bus), message="a dead letter")
    assert letters[0].error == "LookupError: нет контакта «Анна»"
    assert all(isinstance(value, str) for value in letters[0].headers.values())


@pytest.mark.parametrize("cause", ["data-not-fitting-the-schema", "handler-says-poison"])
async def test_message_that_can_never_be_handled_is_dead_lettered_at_once(
    open_db: OpenDb, bus: Bus, spawn: Spawn, cause: str
) -> None:
    db = await open_db(toy)
    handlers = Handlers(CONSUMER)

    @handlers.on(Tick)
    async def on_tick(event: Tick, ctx: EventContext) -> None:
        raise PoisonMessage(f"{event.key} refers to nothing we know")

    spawn(Consumer(db, bus, handlers, max_deliveries=3, backoff=(0.05,)).run())
    if cause == "data-not-fitting-the-schema":
        await publish(bus, Envelope(type=Tick.type, source="/contacts", data={"kee": "typo"}))
    else:
        await publish(bus, Tick(key="k").envelope())

    letters = await wait_until(lambda: dead_letters(bus), message="a dead letter")
    assert letters[0].deliveries == 1


async def test_batch_slower_than_ack_wait_is_not_redelivered_to_another_replica(
    open_db: OpenDb, connect_bus: ConnectBus, spawn: Spawn
) -> None:
    db = await open_db(toy)

    def slow_handlers(replica: str) -> Handlers:
        handlers = Handlers(CONSUMER)

        @handlers.on(Tick)
        async def on_tick(event: Tick, ctx: EventContext) -> None:
            await asyncio.sleep(1.2)  # slow work: twice the ack wait
            await ctx.session.execute(insert(applied).values(key=event.key, replica=replica))

        return handlers

    first, second = await connect_bus("replica-1"), await connect_bus("replica-2")
    spawn(Consumer(db, first, slow_handlers("r1"), ack_wait=0.6).run())
    await wait_until(lambda: _waiting(first, 1), message="the first replica pulling")
    await publish(first, Tick(key="slow").envelope())
    await wait_until(lambda: _delivered(first, 1), message="the first replica has it")
    # The other replica would get the message if the server thought the first one dead.
    spawn(Consumer(db, second, slow_handlers("r2"), ack_wait=0.6).run())

    await wait_until(lambda: settled(first), timeout=5, message="the slow event acked")
    info = await first.js.consumer_info(STREAM, CONSUMER)
    assert info.num_redelivered == 0 and info.delivered.consumer_seq == 1
    assert await applications(db) == {"slow": 1}


async def _waiting(bus: Bus, n: int) -> bool:
    try:
        return (await bus.js.consumer_info(STREAM, CONSUMER)).num_waiting >= n
    except NotFoundError:
        return False


async def _delivered(bus: Bus, n: int) -> bool:
    return (await bus.js.consumer_info(STREAM, CONSUMER)).delivered.consumer_seq >= n
