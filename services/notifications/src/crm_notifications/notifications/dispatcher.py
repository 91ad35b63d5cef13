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

Final states are announced with delivery events in the same transaction: one
`crm.notifications.delivery.<status>` per transactional message, and one
`crm.notifications.delivery.batch` (`DeliveriesChanged`) for the bulk messages
of a commit.

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
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, Update, bindparam, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.contracts.notifications import SINGLE_EVENTS, DeliveriesChanged, DeliveryChanged
from crm_kernel.db import Database, picked_once
from crm_kernel.events import IntegrationEvent
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_events
from crm_notifications.channels.errors import PermanentError, TransientError
from crm_notifications.channels.messages import OutgoingEmail, OutgoingSms
from crm_notifications.channels.select import Mailer, SmsSender
from crm_notifications.models import Attempt, Consent, Notification, Preference, Suppression
from crm_notifications.notifications.consent import address_of
from crm_notifications.notifications.events import delivery, delivery_event
from crm_notifications.preferences import service as preferences
from crm_notifications.preferences.quiet import parse_clock, quiet_until, zone_for
from crm_notifications.sms import is_e164

log = logging.getLogger(__name__)

# Deliveries per `DeliveriesChanged` event (~400 bytes each, well within a NATS message).
REPORT_BATCH = 1000

# The hot path uses Core statements on these tables: no ORM object per message.
NOTIFICATIONS = cast(Table, Notification.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
_N = NOTIFICATIONS.c
# What a claim reads (everything a send needs, nothing more).
_CLAIM_COLUMNS = (
    _N.id,
    _N.key,
    _N.channel,
    _N.recipient,
    _N.subject,
    _N.body_text,
    _N.body_html,
    _N.unsubscribe_url,
    _N.attempts,
    _N.category,
    _N.contact_id,
)
# What a delivery event says about the notification (no bodies).
_EVENT_COLUMNS = (
    _N.id,
    _N.key,
    _N.channel,
    _N.recipient,
    _N.status,
    _N.attempts,
    _N.source_type,
    _N.source_id,
    _N.contact_id,
)
_INSERT_ATTEMPT = insert(ATTEMPTS)


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
        # Expired leases are looked for a few times per lease, not at every turn.
        self.sweep_interval = min(5.0, lease.total_seconds() / 4)
        self._sweep_at = 0.0
        # Claimed messages not yet at the provider: the next batch is claimed only at 0, so
        # no claimed message waits behind more than the calls in flight (its lease runs).
        self._unstarted = 0
        self._all_started = asyncio.Event()

    async def run(self) -> None:
        """Dispatch until cancelled; errors back off and retry.

        The next batch is claimed and screened while the last messages of the
        previous one are still at the provider (at most two batches at once), so
        the provider connections do not idle between batches.
        """
        sending: set[asyncio.Future[int]] = set()
        try:
            while True:
                try:
                    await self._sweep_when_due()
                    room = len(sending) < 2 and self._unstarted <= 0
                    if room and (claimed := await self.claim()):
                        self._unstarted += len(claimed)
                        self._all_started.clear()
                        sending.add(asyncio.ensure_future(self.dispatch(claimed)))
                        continue
                    if not sending:
                        await asyncio.sleep(self.poll_interval)
                        continue
                    # Until a batch ends, the next poll, or (while there is room for
                    # another batch) the last claimed message starts. With no room, a
                    # set `_all_started` must not wake us: that would spin until a batch ends.
                    waiters: set[asyncio.Future[Any]] = set(sending)
                    started = None
                    if len(sending) < 2:
                        started = asyncio.ensure_future(self._all_started.wait())
                        waiters.add(started)
                    await asyncio.wait(
                        waiters,
                        timeout=self.poll_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if started is not None:
                        started.cancel()
                    done = {task for task in sending if task.done()}
                    sending -= done
                    # A failed batch is logged below; its messages wait for their leases to expire.
                    failures = [exc for task in done if (exc := task.exception()) is not None]
                    if failures:
                        raise failures[0]
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatcher %s failed; retrying", self.category)
                    await asyncio.sleep(1)
        finally:
            for task in sending:
                task.cancel()

    async def _sweep_when_due(self) -> None:
        if asyncio.get_running_loop().time() >= self._sweep_at:
            await self.sweep()
            self._sweep_at = asyncio.get_running_loop().time() + self.sweep_interval

    async def dispatch_once(self) -> int:
        """Claim one batch and send it; how many were claimed."""
        claimed = await self.claim()
        self._unstarted += len(claimed)
        return await self.dispatch(claimed) if claimed else 0

    async def dispatch(self, claimed: list[Claimed]) -> int:
        """Screen and send claimed notifications (counted in `_unstarted` by the caller).

        Each outcome is recorded before this returns.
        """
        try:
            screened = await self.screen(claimed)
        except BaseException:
            self._unstarted -= len(claimed)  # none will start; their leases expire
            if self._unstarted <= 0:
                self._all_started.set()
            raise
        # A send starts once a slot is free: this loop is the batch's one waiter for
        # the pool (a task per message waiting on it costs a scan of every waiter).
        deliveries: list[asyncio.Future[None]] = []
        try:
            for n in claimed:
                outcome = screened.get(n.id)
                if outcome is None:
                    await self.slots.acquire()
                self._started()
                deliveries.append(asyncio.ensure_future(self._deliver(n, outcome)))
        except BaseException:
            for delivery in deliveries:
                delivery.cancel()
            raise
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        return len(claimed)

    async def claim(self) -> list[Claimed]:
        """Mark a batch of due notifications `sending` under a lease: one UPDATE ... RETURNING.

        One statement, so several worker processes can claim from the same table
        without taking a row twice: on SQLite the UPDATE holds the write lock while
        it picks, on PostgreSQL the picked rows are locked (skipping those another
        claim holds, and re-checked: a row no longer `queued` is never taken).
        The UPDATE goes by id alone: a second `status = 'queued'` there made SQLite
        walk every queued row through the status index, 0.2-0.4 s per claim with
        a campaign of 50,000 waiting, instead of 200 look-ups by key (9 ms).
        """
        now = datetime.now(UTC)
        due = (
            select(_N.id)
            .where(_N.status == "queued", self._in_pool(), _N.next_attempt_at <= now)
            .order_by(_N.next_attempt_at)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    update(NOTIFICATIONS)
                    .where(_N.id.in_(picked_once(due)))
                    .values(
                        status="sending",
                        lease_until=now + self.lease,
                        updated_at=now,
                        attempts=_N.attempts + 1,
                    )
                    .returning(*_CLAIM_COLUMNS)
                )
            ).all()
        return [Claimed(*row) for row in rows]

    def _in_pool(self) -> ColumnElement[bool]:
        if self.category == "bulk":
            return _N.category == "bulk"
        return _N.category != "bulk"

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

    async def _deliver(self, claimed: Claimed, screened: Outcome | None) -> None:
        """Record the screening outcome, or send (holding the slot taken for it) and record."""
        if screened is not None:
            await self.recorder.submit(screened)
            return
        try:
            outcome = await self.attempt(claimed)
        finally:
            self.slots.release()
        await self.recorder.submit(outcome)

    def _started(self) -> None:
        self._unstarted -= 1
        if self._unstarted <= 0:
            self._all_started.set()

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
        """Outcomes, their attempt rows and (for final states) delivery events, in one transaction.

        Core statements, one executemany per kind of change: a commit of a few
        hundred outcomes costs a handful of round trips, not one per message.
        """
        now = datetime.now(UTC)
        async with self.db.transaction() as session:
            ids = [o.n.id for o in outcomes]
            rows = {
                row.id: row
                for row in await session.execute(select(*_EVENT_COLUMNS).where(_N.id.in_(ids)))
            }
            changes: dict[tuple[tuple[str, ...], bool], list[dict[str, Any]]] = defaultdict(list)
            attempts: list[dict[str, Any]] = []
            events: list[tuple[IntegrationEvent, str | None]] = []
            bulk: list[DeliveryChanged] = []
            for o in outcomes:
                row = rows.get(o.n.id)
                if row is None or row.status != "sending":
                    continue  # the sweeper re-queued it meanwhile; its next attempt will record
                values = _changes(o, now)
                deferred = o.status == "deferred"
                changes[(tuple(values), deferred)].append(
                    {"v_id": o.n.id} | {f"v_{k}": v for k, v in values.items()}
                )
                if not deferred or o.error:  # quiet hours are worth a line; domain pacing not
                    outcome = "retry" if o.status == "queued" else o.status
                    attempts.append(_attempt_row(o.n.id, now, outcome, o.error))
                if o.suppress:
                    await session.merge(
                        Suppression(
                            channel=o.n.channel,
                            address=o.n.address,
                            reason=o.suppress,
                            created_at=now,
                        )
                    )
                if o.status in SINGLE_EVENTS:
                    # Positional, in _EVENT_COLUMNS order (a mapping per row costs more).
                    facts = Facts(*row[:4], o.status, *row[5:])
                    if o.n.category == "bulk":
                        bulk.append(delivery(facts, at=now, error=o.error))
                    else:
                        event = delivery_event(
                            SINGLE_EVENTS[o.status], facts, at=now, error=o.error
                        )
                        events.append((event, o.n.id))
            for (columns, deferred), params in changes.items():
                await session.execute(_update(columns, deferred), params)
            if attempts:
                await session.execute(_INSERT_ATTEMPT, attempts)
            # Campaign traffic: one event for the commit's deliveries, not one each.
            for start in range(0, len(bulk), REPORT_BATCH):
                batch = DeliveriesChanged(deliveries=bulk[start : start + REPORT_BATCH])
                events.append((batch, None))
            await add_events(session, events)


@dataclass(frozen=True)
class Facts:
    """What a delivery event tells about a notification (see `delivery_event`)."""

    id: str
    key: str
    channel: str
    recipient: str
    status: str
    attempts: int
    source_type: str | None
    source_id: str | None
    contact_id: str | None


def _changes(o: Outcome, now: datetime) -> dict[str, Any]:
    """The columns an outcome changes on its notification."""
    if o.status == "deferred":
        # Back to queued until then; waiting for the morning is not a failed try.
        return {
            "status": "queued",
            "updated_at": now,
            "lease_until": None,
            "next_attempt_at": o.defer_until,
        }
    values: dict[str, Any] = {
        "status": o.status,
        "updated_at": now,
        "lease_until": None,
        "last_error": o.error,
    }
    if o.provider_id:
        values |= {"provider_id": o.provider_id, "sent_at": now}
    if o.status == "queued":
        values["next_attempt_at"] = now + timedelta(seconds=o.retry_in)
    return values


@lru_cache(maxsize=32)
def _update(columns: tuple[str, ...], undo_attempt: bool) -> Update:
    """UPDATE of `columns` by id, for executemany; only a row still `sending` is ours to record."""
    values: dict[str, Any] = {c: bindparam(f"v_{c}") for c in columns}
    if undo_attempt:
        values["attempts"] = _N.attempts - 1
    return (
        update(NOTIFICATIONS)
        .where(_N.id == bindparam("v_id"), _N.status == "sending")
        .values(values)
    )


def _attempt_row(
    notification_id: str, at: datetime, outcome: str, detail: str | None
) -> dict[str, Any]:
    return {
        "id": str(new_id()),
        "notification_id": notification_id,
        "at": at,
        "outcome": outcome,
        "detail": detail,
    }


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
