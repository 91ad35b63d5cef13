"""Trace context crosses the bus: a consumer continues the trace of the change that caused it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from crm_kernel.bus import Bus
from crm_kernel.consumer import BatchContext, Consumer, EventContext, Handlers
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.db import Database
from crm_kernel.events import IntegrationEvent
from crm_kernel.outbox import OutboxRelay, add_event
from crm_kernel.telemetry import add_span_processor, setup_tracing
from crm_kernel.testing import wait_until

OpenDb = Callable[..., Awaitable[Database]]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class Tick(IntegrationEvent):
    type = ContactCreated.type

    key: str


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    setup_tracing("test")
    exporter = InMemorySpanExporter()
    add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the provider is global: stop collecting for later tests


async def test_consumer_span_continues_the_trace_that_wrote_the_event(
    open_db: OpenDb, bus: Bus, spawn: Spawn, spans: InMemorySpanExporter
) -> None:
    db = await open_db()
    handled: list[str] = []
    handlers = Handlers("traced")

    @handlers.on(Tick)
    async def on_tick(event: Tick, ctx: EventContext) -> None:
        handled.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))

    spawn(OutboxRelay(db, bus, poll_interval=0.05).run())
    spawn(Consumer(db, bus, handlers).run())

    with trace.get_tracer("test").start_as_current_span("POST /contacts") as request_span:
        async with db.transaction() as session:
            await add_event(session, Tick(key="k"))
    trace_id = request_span.get_span_context().trace_id

    await wait_until(lambda: handled, message="the event handled")
    consumer_spans = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert [s.name for s in consumer_spans] == [f"process {Tick.type}"]
    span = consumer_spans[0]
    assert span.context.trace_id == trace_id
    assert span.attributes is not None
    assert span.attributes["messaging.consumer.group.name"] == "traced"
    # The handler runs inside that span.
    assert handled == [format(trace_id, "032x")]


async def test_each_event_of_a_handled_batch_continues_its_own_trace(
    open_db: OpenDb, bus: Bus, spawn: Spawn, spans: InMemorySpanExporter
) -> None:
    db = await open_db()
    handled: list[str] = []
    handlers = Handlers("traced-batch")

    @handlers.on_batch(Tick)
    async def on_ticks(events: list[Tick], ctx: BatchContext) -> None:
        handled.extend(e.key for e in events)

    trace_ids = set()
    for key in ("a", "b", "c"):
        with trace.get_tracer("test").start_as_current_span(f"request {key}") as request_span:
            async with db.transaction() as session:
                await add_event(session, Tick(key=key))
        trace_ids.add(request_span.get_span_context().trace_id)
    assert await OutboxRelay(db, bus).relay_once() == 3
    spawn(Consumer(db, bus, handlers).run())

    await wait_until(lambda: len(handled) == 3, message="the events handled")
    consumer_spans = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert {s.context.trace_id for s in consumer_spans} == trace_ids
    assert len(consumer_spans) == 3
