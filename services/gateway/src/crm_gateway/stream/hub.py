"""One replica's reading of the event streams, handed to every connection it serves."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from crm_gateway.stream.positions import STREAMS, Positions
from crm_kernel.bus import Bus
from crm_kernel.events import Envelope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamEvent:
    service: str
    seq: int
    envelope: Envelope


@dataclass(eq=False)  # compared and hashed by identity, as set members
class Listener:
    """One connection's queue of every event (filtered later, so positions stay in order)."""

    queue: asyncio.Queue[StreamEvent]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: StreamEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A client too slow to keep up is cut off; it resumes by Last-Event-ID.
            self.overflowed.set()


class Hub:
    """Reads every service's event stream from where it stood at start-up (ordered consumers).

    Each replica reads for itself (ephemeral consumers, nothing shared), so any
    replica can serve any client; a resuming client is replayed from the
    streams by sequence (`replay`), at most `replay_limit` messages per stream.
    """

    def __init__(self, *, queue_size: int, replay_limit: int):
        self.queue_size = queue_size
        self.replay_limit = replay_limit
        self.positions: Positions = {}
        self.listeners: set[Listener] = set()
        self._bus: Bus | None = None
        self._subscriptions: list[Subscription] = []

    async def start(self, bus: Bus) -> None:
        self._bus = bus
        for service, stream in STREAMS.items():
            last = (await bus.js.stream_info(stream)).state.last_seq
            self.positions[service] = last
            self._subscriptions.append(
                await bus.js.subscribe(
                    f"crm.{service}.>",
                    stream=stream,
                    ordered_consumer=True,
                    cb=self._handler(service),
                    config=ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=last + 1
                    ),
                )
            )

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception:  # the connection may be closing already
                log.debug("stream unsubscribe failed", exc_info=True)
        self._subscriptions.clear()

    def _handler(self, service: str) -> Callable[[Msg], Awaitable[None]]:
        async def handle(msg: Msg) -> None:
            seq = msg.metadata.sequence.stream
            self.positions[service] = max(self.positions.get(service, 0), seq)
            try:
                envelope = Envelope.from_bytes(msg.data)
            except ValueError:
                log.warning("unreadable event %s #%s skipped", msg.subject, seq)
                return
            event = StreamEvent(service, seq, envelope)
            for listener in list(self.listeners):
                listener.offer(event)

        return handle

    def listen(self) -> tuple[Listener, Positions]:
        """A new listener and the positions it starts after (no await between: nothing slips by)."""
        listener = Listener(asyncio.Queue(self.queue_size))
        self.listeners.add(listener)
        return listener, dict(self.positions)

    def remove(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    async def replay(self, since: Positions, until: Positions) -> AsyncIterator[StreamEvent]:
        """The stored events after `since` up to `until`, stream by stream (bounded)."""
        assert self._bus is not None
        for service, stream in STREAMS.items():
            last = until.get(service, 0)
            first = max(since.get(service, last) + 1, last - self.replay_limit + 1)
            for seq in range(first, last + 1):
                try:
                    stored = await self._bus.js.get_msg(stream, seq)
                except NotFoundError:  # expired or deleted
                    continue
                if stored.data:
                    yield StreamEvent(service, seq, Envelope.from_bytes(stored.data))
