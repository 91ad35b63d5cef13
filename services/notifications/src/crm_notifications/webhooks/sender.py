"""Deliver pending webhook deliveries: a signed POST each, retried with back-off, every try logged.

Like the e-mail dispatcher: claim due rows under a lease in a short
transaction, POST outside any transaction, record the outcome with its
attempt row. A crashed sender's leased rows go back to pending (the receiver
de-duplicates by `X-CRM-Event-Id`).

The same loop prunes the delivery log: finished deliveries (succeeded or
failed) whose last try is older than the retention go, with their attempts,
a bounded batch per turn (one turn after another while there is a backlog,
else every `prune_interval` seconds).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from sqlalchemy import delete, select, update

from crm_kernel.db import Database, picked_once
from crm_kernel.ids import new_id
from crm_notifications.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from crm_notifications.webhooks.signature import SIGNATURE_HEADER, sign
from crm_notifications.webhooks.targets import GuardedResolver, TargetRefused, check_target

log = logging.getLogger(__name__)

MAX_DELAY = 3600.0
FINISHED = ("succeeded", "failed")


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Job:
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    body: str
    attempts: int


class WebhookSender:
    def __init__(
        self,
        db: Database,
        *,
        allow_private: bool,
        concurrency: int = 10,
        max_attempts: int = 8,
        base_delay: float = 10.0,
        timeout: float = 10.0,
        lease: timedelta = timedelta(minutes=2),
        poll_interval: float = 0.2,
        batch_size: int = 100,
        retention: timedelta | None = None,
        prune_batch: int = 500,
        prune_interval: float = 600.0,
    ):
        self.db = db
        self.allow_private = allow_private
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.timeout = timeout
        self.lease = lease
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        # None: keep the delivery log forever.
        self.retention = retention
        self.prune_batch = prune_batch
        self.prune_interval = prune_interval
        self._prune_at = 0.0
        self._sweep_at = 0.0

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(allow_private=self.allow_private), limit=self.concurrency
        )
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
        ) as http:
            while True:
                try:
                    await self._sweep_when_due()
                    await self._prune_when_due()
                    jobs = await self.claim()
                    await asyncio.gather(*(self.deliver(http, job) for job in jobs))
                    if not jobs:
                        await asyncio.sleep(self.poll_interval)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook sender failed; retrying")
                    await asyncio.sleep(1)

    async def _sweep_when_due(self) -> None:
        """Expired leases are looked for a few times per lease, not at every poll (a write)."""
        if time.monotonic() >= self._sweep_at:
            await self.sweep()
            self._sweep_at = time.monotonic() + min(5.0, self.lease.total_seconds() / 4)

    async def sweep(self) -> None:
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.status == "sending", WebhookDelivery.lease_until < now)
                .values(status="pending", next_attempt_at=now, lease_until=None)
            )

    async def _prune_when_due(self) -> None:
        if self.retention is None or time.monotonic() < self._prune_at:
            return
        pruned = await self.prune()
        backlog = pruned >= self.prune_batch
        self._prune_at = time.monotonic() + (0.0 if backlog else self.prune_interval)

    async def prune(self) -> int:
        """Delete one batch of finished deliveries last tried before the retention; how many."""
        assert self.retention is not None
        cutoff = datetime.now(UTC) - self.retention
        async with self.db.transaction() as session:
            # `next_attempt_at` of a finished delivery is when it was last tried (set at claim);
            # the (status, next_attempt_at) index finds them.
            ids = list(
                (
                    await session.execute(
                        select(WebhookDelivery.id)
                        .where(
                            WebhookDelivery.status.in_(FINISHED),
                            WebhookDelivery.next_attempt_at < cutoff,
                        )
                        .limit(self.prune_batch)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if ids:
                await session.execute(
                    delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
                )
                await session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        return len(ids)

    async def claim(self) -> list[Job]:
        """Mark due deliveries `sending` under a lease: one UPDATE ... RETURNING.

        One statement, so several worker processes never take the same delivery
        (see the notifications dispatcher's claim).
        """
        now = datetime.now(UTC)
        d = WebhookDelivery
        pending = select(d.id).where(d.status == "pending", d.next_attempt_at <= now)
        async with self.db.session() as session:
            # A read first: the claim takes SQLite's one write lock even when nothing is
            # due, five times a second, in the way of the dispatchers' claims and outcomes.
            if await session.scalar(pending.limit(1)) is None:
                return []
        due = (
            pending.order_by(d.next_attempt_at)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.db.transaction() as session:
            rows = await session.execute(
                update(d)
                .where(d.id.in_(picked_once(due)))  # by id alone, see the dispatcher
                .values(
                    status="sending",
                    lease_until=now + self.lease,
                    next_attempt_at=now,  # the time of the last try, which pruning goes by
                    attempts=d.attempts + 1,
                )
                .returning(d.id, d.subscription_id, d.event_id, d.event_type, d.body, d.attempts)
                .execution_options(synchronize_session=False)
            )
            return [Job(*row) for row in rows]

    async def deliver(self, http: aiohttp.ClientSession, job: Job) -> None:
        async with self.db.session() as session:
            subscription = await session.get(WebhookSubscription, job.subscription_id)
        if subscription is None or subscription.deleted_at is not None:
            outcome = Outcome(None, "the subscription was deleted", 0, permanent=True)
        else:
            outcome = await self.post(http, subscription.url, subscription.secret, job)
        await self.record(job, outcome)

    async def post(self, http: aiohttp.ClientSession, url: str, secret: str, job: Job) -> Outcome:
        started = time.monotonic()
        body = job.body.encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "crm-webhooks/1",
            "X-CRM-Event-Id": job.event_id,
            "X-CRM-Event-Type": job.event_type,
            "X-CRM-Delivery-Id": job.id,
            "X-CRM-Timestamp": str(timestamp),
            SIGNATURE_HEADER: sign(secret, body, timestamp),
        }
        try:
            await check_target(url, allow_private=self.allow_private)
            async with http.post(url, data=body, headers=headers, allow_redirects=False) as answer:
                await answer.content.read(4096)
                code = answer.status
        except TargetRefused as exc:
            return Outcome(None, f"refused: {exc}", _ms(started), permanent=True)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}", _ms(started))
        error = None if 200 <= code < 300 else f"HTTP {code}"
        return Outcome(code, error, _ms(started))

    async def record(self, job: Job, outcome: Outcome) -> None:
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            row = await session.get(WebhookDelivery, job.id)
            if row is None or row.status != "sending":
                return
            session.add(
                WebhookAttempt(
                    id=str(new_id()),
                    delivery_id=job.id,
                    at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            row.lease_until = None
            row.last_status_code, row.last_error = outcome.status_code, outcome.error
            if outcome.ok:
                row.status, row.delivered_at = "succeeded", now
            elif outcome.permanent or job.attempts >= self.max_attempts:
                row.status = "failed"
            else:
                delay = min(MAX_DELAY, self.base_delay * 2 ** (job.attempts - 1))
                row.status = "pending"
                row.next_attempt_at = now + timedelta(seconds=delay * random.uniform(0.5, 1.5))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
