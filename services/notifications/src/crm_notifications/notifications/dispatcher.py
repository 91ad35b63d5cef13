"""Dispatch: claim due notifications, call the provider outside any transaction, record the outcome.

The state is written before the provider call (`sending`, with a lease) and
after it (`sent`, `queued` again for a retry, `failed`, `suppressed`). A crash
in between leaves `sending` with an expired lease: the sweeper re-queues it
and counts an `uncertain_attempt`, the one window in which a message may go
out twice. Bulk (campaign) messages have their own dispatcher and pool, every
other category shares the transactional one, so a one-off message never
waits behind a campaign.

Before sending, each message is screened now, not only when queued: the
suppression list, marketing consent (bulk), the contact's category opt-outs,
SMS quiet hours in the recipient's time zone (deferred to the window's end,
not dropped, without using up an attempt), and the per-domain e-mail rate
(over this second's allowance: deferred to the next second). "transactional" and
"critical" messages pass opt-outs and quiet hours.

Outcomes are recorded by group commit: each send hands its outcome to the
recorder and waits until it is committed; outcomes arriving while a commit
runs go together in the next one. One fsync then serves many messages, and
the duplicate window stays the time of one commit, not of a whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import ColumnElement, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.contracts.notifications import (
    DeliveryChanged,
    DeliveryFailed,
    DeliverySent,
    DeliverySuppressed,
)
from crm_kernel.db import Database
from crm_kernel.events import IntegrationEvent
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_events
from crm_notifications.channels.errors import PermanentError, TransientError
from crm_notifications.channels.messages import OutgoingEmail, OutgoingSms
from crm_notifications.channels.select import Mailer, SmsSender
from crm_notifications.models import Attempt, Consent, Notification, Preference, Suppression
from crm_notifications.notifications.consent import address_of
from crm_notifications.notifications.events import delivery_event
from crm_notifications.preferences import service as preferences
from crm_notifications.preferences.quiet import parse_clock, quiet_until, zone_for
from crm_notifications.sms import is_e164

log = logging.getLogger(__name__)

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
    category: str = "transactional"
    contact_id: str | None = None

    @property
    def address(self) -> str:
        return address_of(self.channel, self.recipient)


@dataclass(frozen=True)
class Outcome:
    n: Claimed
    status: str
    error: str | None = None
    provider_id: str | None = None
    retry_in: float = 0.0
    suppress: str | None = None
    # "deferred": back to queued until then, the attempt not counted (quiet hours).
    defer_until: datetime | None = None


class GroupCommit:
    """Writes submitted items in as few transactions as possible; `submit` returns once committed."""

    def __init__(self, write: Callable[[list[Outcome]], Awaitable[None]]):
        self.write = write
        self.waiting: list[tuple[Outcome, asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None

    async def submit(self, outcome: Outcome) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((outcome, done))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            try:
                await self.write([outcome for outcome, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


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
        quiet_hours: tuple[time, time] | None = None,
        domain_rate: int = 0,
    ):
        self.db = db
        self.quiet_hours = quiet_hours
        # E-mails per second per recipient domain (this process), 0: no limit.
        self.domain_rate = domain_rate
        self._domain_second: dict[str, tuple[int, int]] = {}
        self.mailer = mailer
        self.sms = sms
        self.category = category
        self.slots = asyncio.Semaphore(concurrency)
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.lease = lease
        self.poll_interval = poll_interval
        self.recorder = GroupCommit(self._write)

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
        if not claimed:
            return 0
        screened = await self.screen(claimed)
        results = await asyncio.gather(
            *(self._deliver_bounded(n, screened.get(n.id)) for n in claimed),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
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
                            self._in_pool(),
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
                    r.category,
                    r.contact_id,
                )
                for r in rows
            ]

    def _in_pool(self) -> ColumnElement[bool]:
        if self.category == "bulk":
            return Notification.category == "bulk"
        return Notification.category != "bulk"

    async def screen(self, claimed: list[Claimed]) -> dict[str, Outcome]:
        """What happens instead of sending, for the messages that must not go out now."""
        by_channel: dict[str, set[str]] = defaultdict(set)
        for n in claimed:
            by_channel[n.channel].add(n.address)
        suppressed: dict[tuple[str, str], str] = {}
        consented: set[tuple[str, str]] = set()
        async with self.db.session() as session:
            for channel, addresses in by_channel.items():
                suppressed.update(await _suppressions(session, channel, addresses))
                if self.category == "bulk":
                    consented |= await _consents(session, channel, addresses)
            prefs = await preferences.load(session, {n.contact_id for n in claimed if n.contact_id})
        now = datetime.now(UTC)
        outcomes: dict[str, Outcome] = {}
        for n in claimed:
            key = (n.channel, n.address)
            preference = prefs.get(n.contact_id) if n.contact_id else None
            if key in suppressed:
                outcomes[n.id] = Outcome(n, "suppressed", error=f"suppressed: {suppressed[key]}")
            elif self.category == "bulk" and key not in consented:
                outcomes[n.id] = Outcome(n, "suppressed", error="no marketing consent")
            elif preferences.refuses(preference, n.channel, n.category):
                outcomes[n.id] = Outcome(n, "suppressed", error=f"opted out of {n.category}")
            elif until := self._quiet_until(n, preference, now):
                outcomes[n.id] = Outcome(
                    n, "deferred", error=f"quiet hours until {until.isoformat()}", defer_until=until
                )
            elif until := self._domain_paced(n, now):
                outcomes[n.id] = Outcome(n, "deferred", defer_until=until)
        return outcomes

    def _domain_paced(self, n: Claimed, now: datetime) -> datetime | None:
        """The next second, when this second's allowance for the recipient's domain is used up."""
        if not self.domain_rate or n.channel != "email":
            return None
        domain = n.address.rpartition("@")[2]
        second = int(now.timestamp())
        seen, count = self._domain_second.get(domain, (second, 0))
        if seen != second:
            count = 0
        if count >= self.domain_rate:
            return datetime.fromtimestamp(second + 1, UTC)
        self._domain_second[domain] = (second, count + 1)
        return None

    def _quiet_until(
        self, n: Claimed, preference: Preference | None, now: datetime
    ) -> datetime | None:
        if n.channel != "sms" or n.category in preferences.ALWAYS_SENT:
            return None
        window = self.quiet_hours
        if preference is not None and preference.quiet_start and preference.quiet_end:
            window = (parse_clock(preference.quiet_start), parse_clock(preference.quiet_end))
        if window is None:
            return None
        zone = zone_for(preference.time_zone if preference else None, n.recipient)
        return quiet_until(now, zone, *window) if zone is not None else None

    async def sweep(self) -> None:
        """Re-queue notifications whose sender died mid-send (counted as uncertain)."""
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            await session.execute(
                update(Notification)
                .where(
                    Notification.status == "sending",
                    self._in_pool(),
                    Notification.lease_until < now,
                )
                .values(
                    status="queued",
                    uncertain_attempts=Notification.uncertain_attempts + 1,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )

    async def _deliver_bounded(self, claimed: Claimed, screened: Outcome | None) -> None:
        if screened is not None:
            await self.recorder.submit(screened)
            return
        async with self.slots:
            outcome = await self.attempt(claimed)
        await self.recorder.submit(outcome)

    async def attempt(self, n: Claimed) -> Outcome:
        """One provider call, and what it means for the notification."""
        try:
            provider_id = await self._send(n)
        except TransientError as exc:
            if n.attempts >= self.max_attempts:
                return Outcome(n, "failed", error=str(exc))
            delay = self.base_delay * 2 ** (n.attempts - 1) * random.uniform(0.5, 1.5)
            return Outcome(n, "queued", error=str(exc), retry_in=delay)
        except PermanentError as exc:
            return Outcome(
                n, "failed", error=str(exc), suppress="hard_bounce" if exc.suppress else None
            )
        except Exception as exc:  # a bug or an unexpected provider answer: retry, bounded
            log.exception("sending %s failed unexpectedly", n.id)
            status = "failed" if n.attempts >= self.max_attempts else "queued"
            return Outcome(
                n, status, error=f"{type(exc).__name__}: {exc}", retry_in=self.base_delay
            )
        return Outcome(n, "sent", provider_id=provider_id)

    async def _send(self, n: Claimed) -> str:
        if n.channel == "sms":
            if not is_e164(n.recipient):
                raise PermanentError(f"{n.recipient!r} is not an E.164 phone number")
            return await self.sms.send(OutgoingSms(key=n.key, to=n.recipient, text=n.body_text))
        return await self.mailer.send(
            OutgoingEmail(
                key=n.key,
                notification_id=n.id,
                to=n.recipient,
                subject=n.subject or "",
                body_text=n.body_text,
                body_html=n.body_html,
                unsubscribe_url=n.unsubscribe_url,
            )
        )

    async def _write(self, outcomes: list[Outcome]) -> None:
        """Outcomes, their attempt rows and (for final states) delivery events, in one transaction."""
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            ids = [o.n.id for o in outcomes]
            rows = {
                row.id: row
                for row in (
                    await session.execute(select(Notification).where(Notification.id.in_(ids)))
                ).scalars()
            }
            events: list[tuple[IntegrationEvent, str | None]] = []
            for outcome in outcomes:
                row = rows.get(outcome.n.id)
                if row is None or row.status != "sending":
                    continue  # the sweeper re-queued it meanwhile; its next attempt will record
                event = await _apply(session, row, outcome, now)
                if event is not None:
                    events.append((event, row.id))
            await add_events(session, events)


async def _apply(
    session: AsyncSession, row: Notification, o: Outcome, now: datetime
) -> DeliveryChanged | None:
    """Apply one outcome to its row; the delivery event to publish, if any."""
    if o.status == "deferred" and o.defer_until is not None:
        row.status, row.updated_at, row.lease_until = "queued", now, None
        row.attempts -= 1  # waiting for the morning is not a failed try
        row.next_attempt_at = o.defer_until
        if o.error:  # quiet hours are worth a line in the log; domain pacing is not
            session.add(
                Attempt(
                    id=str(new_id()),
                    notification_id=row.id,
                    at=now,
                    outcome="deferred",
                    detail=o.error,
                )
            )
        return None
    row.status, row.updated_at, row.lease_until = o.status, now, None
    row.last_error = o.error
    if o.provider_id:
        row.provider_id, row.sent_at = o.provider_id, now
    if o.status == "queued":
        row.next_attempt_at = now + timedelta(seconds=o.retry_in)
    session.add(
        Attempt(
            id=str(new_id()),
            notification_id=row.id,
            at=now,
            outcome="retry" if o.status == "queued" else o.status,
            detail=o.error,
        )
    )
    if o.suppress:
        await session.merge(
            Suppression(channel=row.channel, address=o.n.address, reason=o.suppress, created_at=now)
        )
    if o.status in EVENTS:
        return delivery_event(EVENTS[o.status], row, at=now, error=o.error)
    return None


async def _suppressions(
    session: AsyncSession, channel: str, addresses: set[str]
) -> dict[tuple[str, str], str]:
    query = select(Suppression.address, Suppression.reason).where(
        Suppression.channel == channel, Suppression.address.in_(addresses)
    )
    return {(channel, address): reason for address, reason in await session.execute(query)}


async def _consents(
    session: AsyncSession, channel: str, addresses: set[str]
) -> set[tuple[str, str]]:
    query = select(Consent.address).where(
        Consent.channel == channel, Consent.address.in_(addresses), Consent.granted == true()
    )
    return {(channel, address) for address in (await session.execute(query)).scalars()}
