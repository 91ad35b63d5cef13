"""The JetStream bus: streams from the contracts, de-duplicated and ordered publishing."""

from __future__ import annotations

import asyncio

import orjson
from nats.js.api import RetentionPolicy, StorageType
from nats.js.errors import NoStreamResponseError

from crm_kernel.bus import DUPLICATE_WINDOW_S, Bus, OutgoingMessage, envelope_message
from crm_kernel.contracts import DEAD_LETTER_STREAM, StreamSpec, stream_specs
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.contracts.notifications import SendEmail
from crm_kernel.events import Envelope
from crm_kernel.testing import NatsServer, wait_until


def contact_created(i: int) -> ContactCreated:
    return ContactCreated(
        id=f"c{i}",
        first_name=f"Contact {i}",
        owner_id="u1",
        version=1,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )


async def stream_messages(bus: Bus, stream: str) -> list[bytes]:
    info = await bus.js.stream_info(stream)
    if info.state.messages == 0:
        return []
    return [
        (await bus.js.get_msg(stream, seq)).data or b""
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


async def test_ensure_streams_twice_is_harmless(bus: Bus) -> None:
    await bus.ensure_streams()
    await bus.ensure_streams()
    names = {s.name for s in stream_specs()}
    assert DEAD_LETTER_STREAM in names
    for name in names:
        assert (await bus.js.stream_info(name)).config.name == name


async def test_ensure_stream_adds_new_subjects_and_keeps_existing_ones(bus: Bus) -> None:
    await bus.ensure_stream(StreamSpec("CRM_TOY", ("crm.toy.thing.created",)))
    await bus.ensure_stream(
        StreamSpec("CRM_TOY", ("crm.toy.thing.created", "crm.toy.thing.deleted"))
    )
    # An older replica still declaring only the first subject takes nothing away.
    await bus.ensure_stream(StreamSpec("CRM_TOY", ("crm.toy.thing.created",)))

    info = await bus.js.stream_info("CRM_TOY")
    assert info.config.subjects == ["crm.toy.thing.created", "crm.toy.thing.deleted"]


async def test_event_streams_keep_history_on_file_with_a_duplicate_window(bus: Bus) -> None:
    config = (await bus.js.stream_info("CRM_CONTACTS")).config
    assert config.storage == StorageType.FILE
    assert config.retention == RetentionPolicy.LIMITS
    assert not config.max_age  # kept forever, for replay
    assert config.duplicate_window == DUPLICATE_WINDOW_S
    assert ContactCreated.type in (config.subjects or [])


async def test_command_streams_are_work_queues_on_file(bus: Bus) -> None:
    config = (await bus.js.stream_info("CRM_NOTIFICATIONS_COMMANDS")).config
    assert config.storage == StorageType.FILE
    assert config.retention == RetentionPolicy.WORK_QUEUE
    assert config.duplicate_window == DUPLICATE_WINDOW_S
    assert SendEmail.type in (config.subjects or [])


async def test_every_stream_is_file_stored_and_only_command_streams_are_work_queues(
    bus: Bus,
) -> None:
    for spec in stream_specs():
        config = (await bus.js.stream_info(spec.name)).config
        assert config.storage == StorageType.FILE, spec.name
        is_work_queue = config.retention == RetentionPolicy.WORK_QUEUE
        assert is_work_queue == spec.name.endswith("_COMMANDS"), spec.name


async def test_same_envelope_published_twice_is_stored_once(bus: Bus) -> None:
    envelope = contact_created(1).envelope()
    first = await bus.publish(envelope)
    second = await bus.publish(envelope)

    assert not first.duplicate
    assert second.duplicate and second.seq == first.seq
    assert [Envelope.from_bytes(m) for m in await stream_messages(bus, "CRM_CONTACTS")] == [
        envelope
    ]


async def test_publish_batch_stores_messages_in_order(bus: Bus) -> None:
    envelopes = [contact_created(i).envelope() for i in range(100)]
    acks = await bus.publish_batch([envelope_message(e) for e in envelopes])

    assert [a.seq for a in acks] == list(range(1, 101))
    stored = [Envelope.from_bytes(m).id for m in await stream_messages(bus, "CRM_CONTACTS")]
    assert stored == [e.id for e in envelopes]


async def test_publish_batch_fails_loudly_for_an_undeclared_subject(bus: Bus) -> None:
    message = OutgoingMessage("crm.nowhere.thing.created", orjson.dumps({}), {"Nats-Msg-Id": "x"})
    [result] = await bus.publish_batch([message])
    assert isinstance(result, NoStreamResponseError)


async def test_bus_closes_without_error_while_nats_is_down(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, name="closing")
    nats_server.stop()
    await wait_until(lambda: not bus.nc.is_connected, message="the outage noticed")
    try:
        # A service shutting down during an outage must still get to dispose its database.
        await bus.close()
        assert bus.nc.is_closed
    finally:
        if not bus.nc.is_closed:
            await bus.nc.close()


async def test_replicas_ensuring_streams_at_once_both_succeed(nats_url: str) -> None:
    first = await Bus.connect(nats_url, name="replica-1")
    second = await Bus.connect(nats_url, name="replica-2")
    try:
        await asyncio.gather(first.ensure_streams(), second.ensure_streams())
        for spec in stream_specs():
            info = await first.js.stream_info(spec.name)
            assert info.config.subjects == list(spec.subjects)
    finally:
        await first.close()
        await second.close()
