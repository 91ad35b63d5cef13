"""Dispatch: claim due notifications, call the provider outside any transaction, record the outcome.

The state is written before the provider call (`sending`, with a lease) and
after it (`sent`, `queued` again for a retry, `failed`, `suppressed`). A crash
in between leaves `sending` with an expired lease: the sweeper re-queues it
and counts an `uncertain_attempt`, the one window in which a message may go
out twice. Each category (transactional, bulk) has its own dispatcher and
pool, so a one-off message never waits behind a campaign.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from crm_kernel.contracts.notifications import (
    DeliveryChanged,
    DeliveryFailed,
    DeliverySent,
    DeliverySuppressed,
)
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_notifications.channels.errors import PermanentError, TransientError
from crm_notifications.channels.messages import OutgoingEmail, OutgoingSms
from crm_notifications.channels.select import Mailer, SmsSender
from crm_notifications.models import Attempt, Notification, Suppression
from crm_notifications.notifications.consent import may_send_bulk

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EVENTS: dict[str, type[DeliveryChanged]] = {
    "sent": DeliverySent,
    "failed": DeliveryFailed,
    "suppressed": DeliverySuppressed,
}


@dataclass(frozen=True)
class Claimed:
    """A snapshot of a claimed notification, used outside the transaction that claimed it."""

    id: str
    key: str
    channel: str
    recipient: str
    subject: str | None
    body_text: str
    body_html: str | None
    unsubscribe_url: str | None
    attempts: int


class Dispatcher:
    def __init__(
        self,
        db: Database,
        *,
        mailer: Mailer,
        sms: SmsSender,
        category: str,
        concurrency: int = 20,
        batch_size: int = 200,
        max_attempts: int = 6,
        base_delay: float = 2.0,
        lease: timedelta = timedelta(minutes=2),
        poll_interval: float = 0.2,
    ):
        self.db = db
        self.mailer = mailer
        self.sms = sms
        self.category = category
        self.slots = asyncio.Semaphore(concurrency)
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.lease = lease
        self.poll_interval = poll_interval

    async def run(self) -> None:
        """Dispatch until cancelled; errors back off and retry."""
        while True:
            try:
                await self.sweep()
                if await self.dispatch_once() == 0:
                    await asyncio.sleep(self.poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher %s failed; retrying", self.category)
                await asyncio.sleep(1)

    async def dispatch_once(self) -> int:
        claimed = await self.claim()
        await asyncio.gather(*(self._deliver_bounded(n) for n in claimed))
        return len(claimed)

    async def claim(self) -> list[Claimed]:
        """Mark a batch of due notifications `sending` under a lease, in one short transaction."""
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        select(Notification)
                        .where(
                            Notification.status == "queued",
                            Notification.category == self.category,
                            Notification.next_attempt_at <= now,
                        )
                        .order_by(Notification.next_attempt_at)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                row.status, row.lease_until, row.updated_at = "sending", now + self.lease, now
                row.attempts += 1
            return [
                Claimed(
                    r.id,
                    r.key,
                    r.channel,
                    r.recipient,
                    r.subject,
                    r.body_text,
                    r.body_html,
                    r.unsubscribe_url,
                    r.attempts,
                )
                for r in rows
            ]

    async def sweep(self) -> None:
        """Re-queue notifications whose sender died mid-send (counted as uncertain)."""
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            await session.execute(
                update(Notification)
                .where(
                    Notification.status == "sending",
                    Notification.category == self.category,
                    Notification.lease_until < now,
                )
                .values(
                    status="queued",
                    uncertain_attempts=Notification.uncertain_attempts + 1,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )

    async def _deliver_bounded(self, claimed: Claimed) -> None:
        async with self.slots:
            await self.deliver(claimed)

    async def deliver(self, n: Claimed) -> None:
        """Check suppression and (for bulk) consent now, not only when queued; send; record."""
        async with self.db.session() as session:
            suppressed = await session.get(Suppression, (n.channel, _address(n)))
            consented = self.category != "bulk" or await may_send_bulk(
                session, n.channel, n.recipient
            )
        if suppressed is not None:
            await self.record(n, "suppressed", error=f"suppressed: {suppressed.reason}")
            return
        if not consented:
            await self.record(n, "suppressed", error="no marketing consent")
            return
        try:
            provider_id = await self._send(n)
        except TransientError as exc:
            if n.attempts >= self.max_attempts:
                await self.record(n, "failed", error=str(exc))
            else:
                delay = self.base_delay * 2 ** (n.attempts - 1) * random.uniform(0.5, 1.5)
                await self.record(n, "queued", error=str(exc), retry_in=delay)
            return
        except PermanentError as exc:
            await self.record(
                n, "failed", error=str(exc), suppress="hard_bounce" if exc.suppress else None
            )
            return
        except Exception as exc:  # a bug or an unexpected provider answer: retry, bounded
            log.exception("sending %s failed unexpectedly", n.id)
            status = "failed" if n.attempts >= self.max_attempts else "queued"
            await self.record(
                n, status, error=f"{type(exc).__name__}: {exc}", retry_in=self.base_delay
            )
            return
        await self.record(n, "sent", provider_id=provider_id)

    async def _send(self, n: Claimed) -> str:
        if n.channel == "sms":
            if not E164.match(n.recipient):
                raise PermanentError(f"{n.recipient!r} is not an E.164 phone number")
            return await self.sms.send(OutgoingSms(key=n.key, to=n.recipient, text=n.body_text))
        return await self.mailer.send(
            OutgoingEmail(
                key=n.key,
                to=n.recipient,
                subject=n.subject or "",
                body_text=n.body_text,
                body_html=n.body_html,
                unsubscribe_url=n.unsubscribe_url,
            )
        )

    async def record(
        self,
        n: Claimed,
        status: str,
        *,
        error: str | None = None,
        provider_id: str | None = None,
        retry_in: float = 0.0,
        suppress: str | None = None,
    ) -> None:
        """The outcome, its attempt row, and (for final states) the delivery event, in one transaction."""
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            row = await session.get(Notification, n.id)
            if row is None or row.status != "sending":
                return  # the sweeper re-queued it meanwhile; its next attempt will record
            row.status, row.updated_at, row.lease_until = status, now, None
            row.last_error = error
            if provider_id:
                row.provider_id, row.sent_at = provider_id, now
            if status == "queued":
                row.next_attempt_at = now + timedelta(seconds=retry_in)
            session.add(
                Attempt(
                    id=str(new_id()),
                    notification_id=n.id,
                    at=now,
                    outcome="retry" if status == "queued" else status,
                    detail=error,
                )
            )
            if suppress:
                await session.merge(
                    Suppression(
                        channel=n.channel, address=_address(n), reason=suppress, created_at=now
                    )
                )
            if status in EVENTS:
                event = EVENTS[status](
                    notification_id=n.id,
                    key=n.key,
                    channel=n.channel,
                    recipient=n.recipient,
                    status=status,
                    attempts=row.attempts,
                    source_type=row.source_type,
                    source_id=row.source_id,
                    error=error,
                    at=now.isoformat(),
                )
                await add_event(session, event, subject=n.id)


def _address(n: Claimed) -> str:
    return n.recipient.lower() if n.channel == "email" else n.recipient
