"""Transactional outbox: events committed with the change, published by a relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.bus import Bus, OutgoingMessage, envelope_message
from crm_kernel.contracts import all_types
from crm_kernel.db import OUTBOX_WRITTEN, Database
from crm_kernel.events import Envelope, IntegrationEvent
from crm_kernel.tables import outbox
from crm_kernel.telemetry import trace_headers

log = logging.getLogger(__name__)

# Built once: a statement with parameters skips SQLAlchemy's per-call construction.
_INSERT = insert(outbox)


async def add_event(
    session: AsyncSession,
    event: IntegrationEvent,
    *,
    subject: str | None = None,
    actor: str | None = None,
) -> Envelope:
    """Store an event to publish once the surrounding transaction commits.

    The current trace context is stored with it, so consumers continue the
    trace of the request that caused the change.
    """
    (envelope,) = await add_events(session, [(event, subject)], actor=actor)
    return envelope


async def add_events(
    session: AsyncSession,
    events: Sequence[tuple[IntegrationEvent, str | None]],
    *,
    actor: str | None = None,
) -> list[Envelope]:
    """`add_event` for many (event, subject) pairs in one INSERT (bulk writers: imports)."""
    if not events:
        return []
    unknown = {event.type for event, _ in events} - set(all_types())
    if unknown:
        # No stream would take them, and they would hold up every row behind them.
        names = ", ".join(sorted(unknown))
        raise ValueError(f"{names}: not a declared contract (crm_kernel.contracts)")
    headers = trace_headers()
    now = datetime.now(UTC)
    envelopes, rows = [], []
    for event, subject in events:
        envelope = event.envelope(subject=subject, actor=actor)
        message = envelope_message(envelope, headers)
        envelopes.append(envelope)
        rows.append(
            {
                "event_id": envelope.id,
                "subject": message.subject,
                "payload": message.payload,
                "headers": dict(message.headers),
                "created_at": now,
            }
        )
    await session.execute(_INSERT, rows)
    session.info[OUTBOX_WRITTEN] = True
    return envelopes


class OutboxRelay:
    """Publishes pending outbox rows in id order (per replica), in batches with acks in flight.

    Woken right after a commit that wrote events (low latency) and polling
    otherwise (rows left by a crashed process or another replica). On
    PostgreSQL, replicas claim disjoint batches with FOR UPDATE SKIP LOCKED.
    A crash between publish and marking re-publishes the batch: JetStream's
    duplicate window and the consumers' inbox make that harmless.
    """

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        keep_published: timedelta = timedelta(days=3),
    ):
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.keep_published = keep_published
        self._wake = asyncio.Event()
        db.on_outbox_commit(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of pending rows; returns how many were published.

        Every row JetStream acknowledged is marked. A refused row (its subject
        in no stream) stays pending and its error is raised, so the loop logs
        it and backs off; the rows after it still go out with each batch.
        """
        refused: BaseException | None = None
        async with self.db.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(outbox.c.id, outbox.c.subject, outbox.c.payload, outbox.c.headers)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            results = await self.bus.publish_batch(
                [OutgoingMessage(r.subject, r.payload, r.headers) for r in rows]
            )
            acked = [
                r.id
                for r, result in zip(rows, results, strict=True)
                if not isinstance(result, BaseException)
            ]
            refused = next((r for r in results if isinstance(r, BaseException)), None)
            if acked:
                await session.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(acked))
                    .values(published_at=datetime.now(UTC))
                )
        if refused is not None:
            raise refused
        return len(acked)

    async def prune(self) -> None:
        """Forget rows published long ago (the stream keeps the history)."""
        cutoff = datetime.now(UTC) - self.keep_published
        async with self.db.transaction() as session:
            await session.execute(
                delete(outbox).where(
                    outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff
                )
            )

    async def run(self) -> None:
        """Relay until cancelled; errors (bus down, database busy) back off and retry."""
        backoff = 0.1
        loops = 0
        while True:
            self._wake.clear()
            try:
                published = await self.relay_once()
                backoff = 0.1
                loops += 1
                if loops % 3600 == 0:
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if published < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
