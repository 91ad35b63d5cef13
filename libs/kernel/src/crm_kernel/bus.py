"""The JetStream bus: connection, streams, publishing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from crm_kernel.contracts import StreamSpec, stream_specs
from crm_kernel.events import Envelope

log = logging.getLogger(__name__)

# JetStream drops a second publish with the same Nats-Msg-Id inside this window;
# the consumers' inbox covers anything older.
DUPLICATE_WINDOW_S = 120.0
PUBLISH_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class OutgoingMessage:
    subject: str
    payload: bytes
    headers: Mapping[str, str]


class Bus:
    """One NATS connection with JetStream, shared by a service's publishers and consumers."""

    def __init__(
        self, nc: NATS, js: JetStreamContext, *, replicas: int = 1, retention_days: int = 0
    ):
        self.nc = nc
        self.js = js
        self.replicas = replicas
        self.retention_days = retention_days

    @classmethod
    async def connect(
        cls, url: str, *, name: str, replicas: int = 1, retention_days: int = 0
    ) -> Bus:
        """Connect, reconnecting forever on loss (publishes wait, consumers resume)."""

        async def on_error(exc: Exception) -> None:
            log.warning("nats error: %s", exc)

        async def on_disconnected() -> None:
            log.warning("nats disconnected")

        async def on_reconnected() -> None:
            log.info("nats reconnected")

        nc = await nats.connect(
            servers=[u.strip() for u in url.split(",") if u.strip()],
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )
        return cls(
            nc,
            nc.jetstream(timeout=PUBLISH_TIMEOUT_S, publish_async_max_pending=8192),
            replicas=replicas,
            retention_days=retention_days,
        )

    async def close(self) -> None:
        """Close after the consumers stopped; every publish was already acked, so nothing is lost."""
        if not self.nc.is_closed:
            await self.nc.close()

    def _config(self, spec: StreamSpec, subjects: Sequence[str]) -> StreamConfig:
        keep_forever = spec.work_queue is False and self.retention_days == 0
        return StreamConfig(
            name=spec.name,
            subjects=list(subjects),
            retention=RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            duplicate_window=DUPLICATE_WINDOW_S,
            discard=DiscardPolicy.OLD,
            max_age=None if keep_forever else float(self.retention_days or 7) * 86400,
            max_msgs=-1,
            max_bytes=-1,
        )

    async def ensure_stream(self, spec: StreamSpec) -> None:
        """Create the stream, or add missing subjects to it; never removes one.

        Never removing keeps an older replica, still running during a rolling
        deploy, from taking away subjects a newer one already publishes.
        """
        try:
            info = await self.js.stream_info(spec.name)
        except NotFoundError:
            try:
                await self.js.add_stream(self._config(spec, spec.subjects))
                return
            except Exception:  # another replica created it meanwhile
                info = await self.js.stream_info(spec.name)
        current = list(info.config.subjects or [])
        missing = [s for s in spec.subjects if s not in current]
        if missing:
            await self.js.update_stream(self._config(spec, current + missing))

    async def ensure_streams(self, specs: Sequence[StreamSpec] | None = None) -> None:
        """Make sure every stream the system uses exists (idempotent, any service may call)."""
        for spec in specs if specs is not None else stream_specs():
            await self.ensure_stream(spec)

    async def publish(self, envelope: Envelope, headers: Mapping[str, str] | None = None) -> PubAck:
        """Publish one envelope and wait for JetStream to store it."""
        message = envelope_message(envelope, headers)
        return await self.js.publish(
            message.subject, message.payload, headers=dict(message.headers)
        )

    async def publish_batch(
        self, messages: Sequence[OutgoingMessage]
    ) -> list[PubAck | BaseException]:
        """Publish in order with every ack in flight at once; each result is an ack or the error."""
        return await acks_of(await self.send_batch(messages))

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[asyncio.Future[PubAck]]:
        """Hand messages to the connection in order without waiting for JetStream's acks.

        Each future resolves to the message's ack (or error); `acks_of` collects
        them. A caller can put the next batch on the wire while these are stored.
        """
        return [
            await self.js.publish_async(m.subject, m.payload, headers=dict(m.headers))
            for m in messages
        ]


async def acks_of(futures: Sequence[asyncio.Future[PubAck]]) -> list[PubAck | BaseException]:
    """The ack or the error of each message `send_batch` sent, within the publish timeout."""
    if futures:
        await asyncio.wait(futures, timeout=PUBLISH_TIMEOUT_S)
    return [_outcome(f) for f in futures]


def _outcome(future: asyncio.Future[PubAck]) -> PubAck | BaseException:
    if not future.done():
        future.cancel()
        return TimeoutError("JetStream did not acknowledge in time")
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception() or future.result()


def envelope_message(
    envelope: Envelope, headers: Mapping[str, str] | None = None
) -> OutgoingMessage:
    """The NATS message for an envelope: subject = type, Nats-Msg-Id = event id."""
    all_headers = {
        "Nats-Msg-Id": envelope.id,
        "Content-Type": "application/cloudevents+json",
        **(headers or {}),
    }
    return OutgoingMessage(envelope.type, envelope.to_bytes(), all_headers)
