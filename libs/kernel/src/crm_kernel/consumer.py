"""Durable JetStream consumers: batched, idempotent handlers with a dead-letter path.

A service declares what it handles in a few lines:

    handlers = Handlers("reports")

    @handlers.on(ContactCreated)
    async def on_contact_created(event: ContactCreated, ctx: EventContext) -> None:
        ctx.session.add(...)

and runs `Consumer(db, bus, handlers).run()`. Every replica binds the same
durable pull consumer, so each message goes to one of them. A batch is applied
in one transaction together with its inbox rows and acked only after commit;
a failing batch is retried message by message, so one bad message cannot hold
the others back. A message that keeps failing goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel import inbox
from crm_kernel.bus import Bus
from crm_kernel.contracts import DEAD_LETTER_PREFIX, stream_for
from crm_kernel.db import Database
from crm_kernel.events import Envelope, IntegrationEvent
from crm_kernel.telemetry import consumer_spans

log = logging.getLogger(__name__)

# About how many bytes of messages one batch (one transaction) takes: small events
# come `batch_size` at a time, large commands (many recipients each) a few at a time.
BATCH_BYTES = 4 * 1024 * 1024

E = TypeVar("E", bound=IntegrationEvent)
# Picks, inside a batch's transaction, the events worth handling.
Select = Callable[[AsyncSession, list[Envelope]], Awaitable[list[Envelope]]]


@dataclass
class EventContext:
    """What a handler gets besides the event: the transaction and the envelope."""

    session: AsyncSession
    envelope: Envelope


@dataclass
class BatchContext:
    """What a batch handler gets: the transaction and the envelopes, in delivery order."""

    session: AsyncSession
    envelopes: list[Envelope]


@dataclass(frozen=True)
class Registration:
    schema: type[IntegrationEvent]
    handler: Callable[..., Awaitable[None]]
    batched: bool


class Handlers:
    """The events one consumer (a durable name) handles, by type.

    For a consumer that reads many events and acts on few, `select` picks the
    events worth handling; the others are acked untouched (no span, no parsing
    into their schema, no inbox row: a redelivery asks `select` again).
    """

    def __init__(self, name: str, *, select: Select | None = None):
        self.name = name
        self.select = select
        self.by_type: dict[str, Registration] = {}

    def _register(
        self, schema: type[IntegrationEvent], fn: Callable[..., Awaitable[None]], batched: bool
    ) -> None:
        if schema.type in self.by_type:
            raise ValueError(f"{self.name} already handles {schema.type}")
        self.by_type[schema.type] = Registration(schema, fn, batched)

    def on(self, schema: type[E]) -> Callable[[Callable[[E, EventContext], Awaitable[None]]], Any]:
        """Handle events of this type one at a time (inside the batch's transaction)."""

        def register(fn: Callable[[E, EventContext], Awaitable[None]]) -> Any:
            self._register(schema, fn, batched=False)
            return fn

        return register

    def on_batch(
        self, schema: type[E]
    ) -> Callable[[Callable[[list[E], BatchContext], Awaitable[None]]], Any]:
        """Handle consecutive events of this type together, e.g. with one multi-row insert.

        Where throughput matters: a statement per event costs about a
        millisecond through the async drivers, a statement per batch does not.
        """

        def register(fn: Callable[[list[E], BatchContext], Awaitable[None]]) -> Any:
            self._register(schema, fn, batched=True)
            return fn

        return register

    def subjects_by_stream(self) -> dict[str, list[str]]:
        streams: dict[str, list[str]] = defaultdict(list)
        for subject, registration in sorted(self.by_type.items()):
            streams[stream_for(registration.schema)].append(subject)
        return dict(streams)


class PoisonMessage(Exception):
    """A message that can never be handled (it does not fit its schema): dead-letter it at once.

    A handler may raise it too, for data no retry will make acceptable.
    """


# Printable ASCII but `%`: header values must be ASCII, so the rest is %-encoded.
_HEADER_SAFE_CHARS = "".join(chr(c) for c in range(32, 127) if chr(c) != "%")


def header_value(text: str, limit: int = 2000) -> str:
    """Text as a NATS header value: one line, ASCII (%-encoded), bounded."""
    return quote(" ".join(text.split())[:limit], safe=_HEADER_SAFE_CHARS)


class Consumer:
    """Runs one durable pull consumer per stream a `Handlers` set listens to."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        handlers: Handlers,
        *,
        max_deliveries: int = 5,
        batch_size: int = 256,
        ack_wait: float = 10.0,
        batch_timeout: float = 60.0,
        backoff: Sequence[float] = (0.5, 2.0, 10.0, 30.0, 60.0),
    ):
        self.db = db
        self.bus = bus
        self.handlers = handlers
        self.name = handlers.name
        self.max_deliveries = max_deliveries
        self.batch_size = batch_size
        self.ack_wait = ack_wait
        self.batch_timeout = batch_timeout
        self.backoff = list(backoff)

    def _backoff(self, delivered: int) -> float:
        return self.backoff[min(delivered, len(self.backoff)) - 1] if self.backoff else 1.0

    async def ensure(self) -> None:
        """Create or update the durable consumers (explicit, so config changes apply)."""
        for stream, subjects in self.handlers.subjects_by_stream().items():
            await self.bus.js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name=self.name,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    filter_subjects=subjects,
                    ack_wait=self.ack_wait,
                    # A few more than ours: the server keeps delivering until we
                    # have dead-lettered the message ourselves.
                    max_deliver=self.max_deliveries + 3,
                    max_ack_pending=20_000,
                    max_waiting=512,
                ),
            )

    async def replay_from_start(self) -> None:
        """Delete and recreate the durable consumers: every stream is delivered again from its start.

        The running fetch loops keep their subscriptions (same durable names), so
        they pick up the replay; the caller first empties what the replay rebuilds,
        including this consumer's inbox.
        """
        for stream in self.handlers.subjects_by_stream():
            with contextlib.suppress(NotFoundError):
                await self.bus.js.delete_consumer(stream, self.name)
        await self.ensure()

    async def run(self) -> None:
        """Consume every stream until cancelled."""
        await self.ensure()
        streams = list(self.handlers.subjects_by_stream())
        await asyncio.gather(*(self._run_stream(stream) for stream in streams))

    async def _run_stream(self, stream: str) -> None:
        subscription = await self.bus.js.pull_subscribe_bind(self.name, stream)
        size = 1  # until the first messages tell how large they are
        while True:
            try:
                # Short polls: a pull request dies with a restarted server, so ask again soon.
                messages = await subscription.fetch(size, timeout=2)
            except (TimeoutError, NatsTimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: fetch from %s failed", self.name, stream)
                await asyncio.sleep(1)
                continue
            size = _fetch_size(messages, self.batch_size)
            try:
                for batch in _by_bytes(messages):
                    await self.handle_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Unacked messages come back after ack_wait; nothing is lost.
                log.exception("%s: batch from %s failed", self.name, stream)
                await asyncio.sleep(1)

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Apply a batch once: skip what was applied, dead-letter the hopeless, ack after commit."""
        parsed: list[tuple[Msg, Envelope]] = []
        for msg in messages:
            try:
                parsed.append((msg, Envelope.from_bytes(msg.data)))
            except Exception as exc:
                await self.dead_letter(msg, f"unreadable envelope: {exc}")

        async with self.db.session() as session:
            done = await inbox.processed_ids(session, self.name, (e.id for _, e in parsed))
        fresh: list[tuple[Msg, Envelope]] = []
        seen: set[str] = set()
        duplicates: list[Msg] = []
        for msg, envelope in parsed:
            if envelope.id in done or envelope.id in seen:
                duplicates.append(msg)
            elif msg.metadata.num_delivered > self.max_deliveries:
                # Delivered that often without an answer: the handler crashes or hangs.
                await self.dead_letter(msg, "no answer after repeated deliveries", envelope)
            else:
                seen.add(envelope.id)
                fresh.append((msg, envelope))
        await _ack(duplicates)
        if not fresh:
            return
        # A short ack_wait brings a dead replica's messages back soon; while a
        # batch is at work the server is told so, for the messages still open.
        pending = {id(msg): msg for msg, _ in fresh}
        keepalive = asyncio.ensure_future(self._keep_alive(pending))
        try:
            try:
                async with asyncio.timeout(self.batch_timeout), self.db.transaction() as session:
                    selected = await self._selected(session, fresh)
                    await self._apply(session, selected)
                    await inbox.record(session, self.name, (e.id for _, e in selected))
            except Exception as exc:
                if len(fresh) == 1:
                    await self._failed(*fresh[0], exc)
                    return
                log.warning("%s: batch of %d failed; retrying one by one", self.name, len(fresh))
                for msg, envelope in fresh:
                    await self._handle_one(msg, envelope)
                    pending.pop(id(msg), None)
                return
        finally:
            keepalive.cancel()
        await _ack([msg for msg, _ in fresh])

    async def _keep_alive(self, pending: dict[int, Msg]) -> None:
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            await asyncio.gather(
                *(m.in_progress() for m in list(pending.values())), return_exceptions=True
            )

    async def _handle_one(self, msg: Msg, envelope: Envelope) -> None:
        try:
            async with asyncio.timeout(self.batch_timeout), self.db.transaction() as session:
                if not await inbox.processed_ids(session, self.name, [envelope.id]):
                    selected = await self._selected(session, [(msg, envelope)])
                    await self._apply(session, selected)
                    await inbox.record(session, self.name, (e.id for _, e in selected))
        except IntegrityError as exc:
            # Another replica applied it meanwhile (its inbox row won): done.
            async with self.db.session() as session:
                if not await inbox.processed_ids(session, self.name, [envelope.id]):
                    await self._failed(msg, envelope, exc)
                    return
        except Exception as exc:
            await self._failed(msg, envelope, exc)
            return
        await _ack([msg])

    async def _selected(
        self, session: AsyncSession, items: list[tuple[Msg, Envelope]]
    ) -> list[tuple[Msg, Envelope]]:
        if self.handlers.select is None:
            return items
        wanted = {e.id for e in await self.handlers.select(session, [e for _, e in items])}
        return [(msg, envelope) for msg, envelope in items if envelope.id in wanted]

    async def _apply(self, session: AsyncSession, items: Sequence[tuple[Msg, Envelope]]) -> None:
        """Run the handlers in delivery order; a batch handler takes each run of its type."""
        position = 0
        while position < len(items):
            registration = self.handlers.by_type.get(items[position][1].type)
            end = position + 1
            if registration is not None and registration.batched:
                while end < len(items) and items[end][1].type == items[position][1].type:
                    end += 1
            run = items[position:end]
            position = end
            if registration is None:
                continue  # not ours (a filter changed meanwhile): nothing to do
            with consumer_spans([(m.headers, m.subject) for m, _ in run], self.name):
                try:
                    events = [envelope.event(registration.schema) for _, envelope in run]
                except ValidationError as exc:
                    raise PoisonMessage(
                        f"does not fit {registration.schema.__name__}: {exc}"
                    ) from exc
                if registration.batched:
                    await registration.handler(events, BatchContext(session, [e for _, e in run]))
                else:
                    await registration.handler(events[0], EventContext(session, run[0][1]))

    async def _failed(self, msg: Msg, envelope: Envelope, exc: BaseException) -> None:
        """The handler raised: retry later with back-off, or dead-letter after the last try."""
        error = f"{type(exc).__name__}: {exc}"
        delivered = msg.metadata.num_delivered
        log.warning(
            "%s: %s (%s) failed on delivery %d: %s",
            self.name,
            envelope.type,
            envelope.id,
            delivered,
            error,
        )
        if isinstance(exc, PoisonMessage) or delivered >= self.max_deliveries:
            await self.dead_letter(msg, error, envelope)
        else:
            await msg.nak(delay=self._backoff(delivered))

    async def dead_letter(self, msg: Msg, error: str, envelope: Envelope | None = None) -> None:
        """Keep the original message and the error in the dead-letter stream, then ack it."""
        meta = msg.metadata
        headers: dict[str, str] = {
            k: v for k, v in (msg.headers or {}).items() if k != "Nats-Msg-Id"
        }
        headers.update(
            {
                "Nats-Msg-Id": f"{self.name}:{meta.stream}:{meta.sequence.stream}",
                "Crm-Error": header_value(error),
                "Crm-Consumer": self.name,
                "Crm-Original-Subject": msg.subject,
                "Crm-Original-Stream": meta.stream,
                "Crm-Original-Sequence": str(meta.sequence.stream),
                "Crm-Deliveries": str(meta.num_delivered),
                "Crm-Failed-At": datetime.now(UTC).isoformat(),
            }
        )
        try:
            await self.bus.js.publish(
                f"{DEAD_LETTER_PREFIX}.{self.name}", msg.data, headers=headers
            )
        except Exception:
            log.exception("%s: dead-lettering failed; the message will come back", self.name)
            await msg.nak(delay=self._backoff(meta.num_delivered))
            return
        log.error(
            "%s: dead-lettered %s seq %d: %s",
            self.name,
            envelope.type if envelope else msg.subject,
            meta.sequence.stream,
            error,
        )
        await _ack([msg])


def _fetch_size(messages: Sequence[Msg], most: int) -> int:
    """How many more messages like these make about `BATCH_BYTES` (at most `most`)."""
    average = sum(len(m.data) for m in messages) / max(len(messages), 1)
    return max(1, min(most, int(BATCH_BYTES / max(average, 1))))


def _by_bytes(messages: Sequence[Msg]) -> Iterator[Sequence[Msg]]:
    """Consecutive runs of about `BATCH_BYTES` each (at least one message): one transaction each."""
    start, size = 0, 0
    for end, msg in enumerate(messages):
        if end > start and size + len(msg.data) > BATCH_BYTES:
            yield messages[start:end]
            start, size = end, 0
        size += len(msg.data)
    if start < len(messages):
        yield messages[start:]


async def _ack(messages: Sequence[Msg]) -> None:
    """Acknowledge without waiting for the server's confirmation of each ack.

    A confirmed ack (`ack_sync`) costs a round trip that, with the server syncing
    every write to disk, can outlast its timeout under load, failing a batch that
    has already committed. A lost ack only means a redelivery, which the inbox skips.
    """
    for msg in messages:
        await msg.ack()
