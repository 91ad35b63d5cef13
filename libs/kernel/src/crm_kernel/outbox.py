"""Transactional outbox: events committed with the change, published by a relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.bus import Bus, OutgoingMessage, acks_of, envelope_message
from crm_kernel.contracts import all_types
from crm_kernel.db import OUTBOX_WRITTEN, Database
from crm_kernel.events import Envelope, IntegrationEvent
from crm_kernel.ids import new_id
from crm_kernel.tables import outbox
from crm_kernel.telemetry import trace_headers

log = logging.getLogger(__name__)

# Built once: a statement with parameters skips SQLAlchemy's per-call construction.
_INSERT = insert(outbox)
# Times in JSON as the envelope model writes them.
_JSON_TIME = TypeAdapter(datetime)


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


async def add_event_data(
    session: AsyncSession,
    kind: type[IntegrationEvent],
    items: Sequence[tuple[dict[str, Any], str | None]],
    *,
    actor: str | None = None,
) -> None:
    """`add_events` for (data, subject) pairs whose data is already the event in JSON form.

    For bulk writers that build the data from rows they just wrote (valid by
    construction): an event model, an envelope model and their dumps per row cost
    more than the row's own insert. The outbox row is byte for byte what
    `add_events` writes for the same event (a test holds them equal).
    """
    if kind.type not in all_types():
        raise ValueError(f"{kind.type}: not a declared contract (crm_kernel.contracts)")
    headers = trace_headers()
    now = datetime.now(UTC)
    stamp = _JSON_TIME.dump_python(now, mode="json")
    source = f"/{kind.type.split('.')[1]}"
    rows = []
    for data, subject in items:
        event_id = str(new_id())
        envelope = {
            "specversion": "1.0",
            "id": event_id,
            "type": kind.type,
            "source": source,
            "subject": subject,
            "time": stamp,
            "datacontenttype": "application/json",
            "actor": actor,
            "dataversion": kind.schema_version,
            "data": data,
        }
        # As Envelope.to_bytes: what the envelope does not know is left out.
        for optional in ("subject", "actor"):
            if envelope[optional] is None:
                del envelope[optional]
        rows.append(
            {
                "event_id": event_id,
                "subject": kind.type,
                "payload": orjson.dumps(envelope),
                "headers": {
                    "Nats-Msg-Id": event_id,
                    "Content-Type": "application/cloudevents+json",
                    **headers,
                },
                "created_at": now,
            }
        )
    if rows:
        await session.execute(_INSERT, rows)
        session.info[OUTBOX_WRITTEN] = True


class OutboxRelay:
    """Publishes pending outbox rows in id order (per replica), in batches with acks in flight.

    Woken right after a commit that wrote events (low latency) and polling
    otherwise (rows left by a crashed process or another replica). On
    PostgreSQL, replicas claim disjoint batches with FOR UPDATE SKIP LOCKED.
    A crash between publish and marking re-publishes the batch: JetStream's
    duplicate window and the consumers' inbox make that harmless.

    `run` keeps up to `pipeline` batches going: the next batch is read while
    JetStream stores (fsyncs) the one before, and goes on the wire the moment that
    one is fully acknowledged, while it is being marked. The server no longer
    waits for our SELECT and UPDATE between batches, and the order is kept.
    """

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        keep_published: timedelta = timedelta(days=3),
        pipeline: int = 2,
    ):
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.keep_published = keep_published
        self.pipeline = max(1, pipeline)
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
        return await self._relay_batch(set())

    async def _relay_batch(
        self,
        in_flight: set[int],
        *,
        sent: asyncio.Future[int] | None = None,
        after: asyncio.Future[bool] | None = None,
        acked: asyncio.Future[bool] | None = None,
    ) -> int:
        """One batch, leaving out the rows of batches still in flight (`in_flight`, shared).

        Pipelining (`run`): the rows are read at once, but go on the wire only
        when the batch before has every ack (`after` True), so the order in the
        stream is the rows' order even when that batch fails (`after` False: this
        one publishes nothing, and the failed rows go first in a later batch).
        `sent` gets the number of rows put on the wire (0: none), `acked`
        whether JetStream acknowledged them all.
        """
        refused: BaseException | None = None
        ids: set[int] = set()
        try:
            async with self.db.sessions() as session, session.begin():
                query = (
                    select(outbox.c.id, outbox.c.subject, outbox.c.payload, outbox.c.headers)
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
                if in_flight:
                    # SQLite has no row locks: the rows of a batch awaiting its acks are
                    # still unmarked, so leave them out by id.
                    query = query.where(outbox.c.id.not_in(sorted(in_flight)))
                rows = (await session.execute(query)).all()
                if not rows:
                    return 0
                ids = {r.id for r in rows}
                in_flight |= ids
                if after is not None and not await after:
                    return 0
                futures = await self.bus.send_batch(
                    [OutgoingMessage(r.subject, r.payload, r.headers) for r in rows]
                )
                _resolve(sent, len(rows))
                results = await acks_of(futures)
                acked_ids = [
                    r.id
                    for r, result in zip(rows, results, strict=True)
                    if not isinstance(result, BaseException)
                ]
                _resolve(acked, len(acked_ids) == len(rows))
                refused = next((r for r in results if isinstance(r, BaseException)), None)
                if acked_ids:
                    await session.execute(
                        update(outbox)
                        .where(outbox.c.id.in_(acked_ids))
                        .values(published_at=datetime.now(UTC))
                    )
        finally:
            # Only after the marks committed: until then another batch would read them again.
            in_flight -= ids
            _resolve(sent, 0)
            _resolve(acked, False)
        if refused is not None:
            raise refused
        return len(acked_ids)

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
        in_flight: set[int] = set()
        running: set[asyncio.Task[int]] = set()
        after: asyncio.Future[bool] | None = None
        try:
            while True:
                self._wake.clear()
                loop = asyncio.get_running_loop()
                sent: asyncio.Future[int] = loop.create_future()
                acked: asyncio.Future[bool] = loop.create_future()
                batch = self._relay_batch(in_flight, sent=sent, after=after, acked=acked)
                running.add(asyncio.create_task(batch))
                full = (await sent) >= self.batch_size
                # A full batch: more may wait, so the next one is read while this one's
                # acks come (at most `pipeline` at once). Otherwise let every batch finish.
                after = acked if full else None
                failures: list[BaseException] = []
                while running and (len(running) >= self.pipeline or not full or failures):
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    failures += [e for t in done if (e := t.exception()) is not None]
                loops += 1
                if not failures and loops % 3600 == 0:
                    try:
                        await self.prune()
                    except Exception as exc:
                        failures.append(exc)
                if failures:
                    after = None  # every batch has ended
                    log.error(
                        "outbox relay failed; retrying in %.1fs", backoff, exc_info=failures[0]
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                if not full:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)


def _resolve(future: asyncio.Future[Any] | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)
