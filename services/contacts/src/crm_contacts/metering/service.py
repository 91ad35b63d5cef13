"""Read metering: distinct contacts per user per sliding window, the 429 guard, its alert.

With Redis each request that shows contacts costs one script call (a sorted set
of contact ids per user, scored by read time, and one of viewers per contact).
Without it the reads are counted in memory and written to `contact_views` in
the background (`DatabaseMeter`): the request path does no database write. A
read that would go over the limit is refused before it is recorded, so refused
reads neither count nor show up in "who viewed this client".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import Table, and_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.common import utcnow
from crm_contacts.contacts.models import Contact
from crm_contacts.contacts.schemas import ViewerRead
from crm_contacts.metering.models import BulkReadAlert, ContactView
from crm_contacts.settings import ContactsSettings
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.contacts import BulkReadSuspected
from crm_kernel.db import Database, insert_ignoring_duplicates
from crm_kernel.outbox import add_event
from crm_kernel.problems import Forbidden, NotFound, TooManyRequests

log = logging.getLogger(__name__)
MAX_VIEWERS = 500

# KEYS[1]: the user's reads. ARGV: now, cutoff, limit, user, viewers prefix,
# viewers ttl, then the contact ids. Returns the distinct count (refused if > limit).
_RECORD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
for i = 7, #ARGV do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then count = count + 1 end
end
local limit = tonumber(ARGV[3])
if limit > 0 and count > limit then return count end
for i = 7, #ARGV do
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  redis.call('ZADD', ARGV[5] .. ARGV[i], ARGV[1], ARGV[4])
  redis.call('EXPIRE', ARGV[5] .. ARGV[i], ARGV[6])
end
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[1] - ARGV[2]) + 1)
return count
"""


class Meter(Protocol):
    async def record(
        self, user_id: str, contact_ids: Sequence[str], *, limit: int, now: datetime
    ) -> int:
        """Record the reads unless they take the user over `limit`; the distinct count."""

    async def viewers(self, contact_id: str) -> list[ViewerRead]:
        """Who read the contact, last read first."""


class DatabaseMeter:
    """Counts reads in memory and writes them to `contact_views` in the background.

    A request costs no database write (before: a count and an upsert with a
    commit, 12 ms median on SQLite's synchronous commit). Each user's reads in
    the window are loaded from the table on first use and re-read every
    `REFRESH_SECONDS`; this replica's new reads are added at once and flushed
    every `FLUSH_SECONDS` in one multi-row upsert. Across replicas a user is
    therefore counted with a lag of up to both periods: someone reading through
    several replicas can go over the limit by what they read elsewhere in those
    few seconds, and "who viewed" shows other replicas' reads a second late.
    A crash loses at most the last second's views. Exact metering: `REDIS_URL`.
    """

    FLUSH_SECONDS = 1.0
    REFRESH_SECONDS = 5.0
    UPSERT_ROWS = 1000

    def __init__(self, db: Database, window: timedelta):
        self.db = db
        self.window = window
        # user -> (contact -> last read) within the window, and when it was loaded.
        self._reads: dict[str, dict[str, datetime]] = {}
        self._loaded: dict[str, float] = {}
        # (user, contact) -> last read, not yet written; and the batch being written.
        self._pending: dict[tuple[str, str], datetime] = {}
        self._writing: dict[tuple[str, str], datetime] = {}
        self._flush_lock = asyncio.Lock()

    async def record(
        self, user_id: str, contact_ids: Sequence[str], *, limit: int, now: datetime
    ) -> int:
        count = len(contact_ids)
        if limit:
            reads = await self._window(user_id, now)
            cutoff = now - self.window
            wanted = set(contact_ids)
            count += sum(1 for c, at in reads.items() if at > cutoff and c not in wanted)
            if count > limit:
                return count
            reads.update(dict.fromkeys(contact_ids, now))
        for contact_id in contact_ids:
            self._pending[(user_id, contact_id)] = now
        return count

    async def _window(self, user_id: str, now: datetime) -> dict[str, datetime]:
        """The user's reads in the window: the table's (re-read when old) plus unwritten ones."""
        reads = self._reads.get(user_id)
        if reads is not None and time.monotonic() - self._loaded[user_id] < self.REFRESH_SECONDS:
            return reads
        loaded_at = time.monotonic()
        async with self.db.session() as session:
            rows = await session.execute(
                select(ContactView.contact_id, ContactView.viewed_at).where(
                    ContactView.user_id == user_id, ContactView.viewed_at > now - self.window
                )
            )
            fresh = {contact_id: at for contact_id, at in rows.all()}
        # This replica's reads that the table may not hold yet (buffered, being written,
        # or written after the SELECT began) count too.
        cutoff = now - self.window
        local = [
            *(self._reads.get(user_id) or {}).items(),
            *(
                (c, at)
                for (u, c), at in (*self._writing.items(), *self._pending.items())
                if u == user_id
            ),
        ]
        for contact_id, at in local:
            if at > cutoff and at > fresh.get(contact_id, cutoff):
                fresh[contact_id] = at
        self._reads[user_id], self._loaded[user_id] = fresh, loaded_at
        return fresh

    async def flush(self) -> None:
        """Write the buffered reads (one upsert per 1,000; a later read time wins)."""
        async with self._flush_lock:
            self._writing, self._pending = self._pending, {}
            try:
                rows = [
                    {"user_id": user, "contact_id": contact, "viewed_at": at}
                    for (user, contact), at in self._writing.items()
                ]
                for start in range(0, len(rows), self.UPSERT_ROWS):
                    async with self.db.transaction() as session:
                        await session.execute(
                            _upsert_views(session, rows[start : start + self.UPSERT_ROWS])
                        )
            except BaseException:
                # Kept for the next flush (newer reads made meanwhile win).
                self._pending = {**self._writing, **self._pending}
                raise
            finally:
                self._writing = {}
        self._forget_idle()

    def _forget_idle(self) -> None:
        """Drop users' windows due for a re-read anyway (memory stays with the active users)."""
        stale = time.monotonic() - self.REFRESH_SECONDS
        for user_id in [u for u, at in self._loaded.items() if at < stale]:
            del self._reads[user_id], self._loaded[user_id]

    async def run(self) -> None:
        """Flush every `FLUSH_SECONDS` for the life of the service, and once more at shutdown."""
        try:
            while True:
                await asyncio.sleep(self.FLUSH_SECONDS)
                try:
                    await self.flush()
                except Exception:
                    log.exception("read metering: writing views failed; retried")
        finally:
            await self.flush()

    async def viewers(self, contact_id: str) -> list[ViewerRead]:
        await self.flush()
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ContactView)
                .where(ContactView.contact_id == contact_id)
                .order_by(ContactView.viewed_at.desc(), ContactView.user_id)
                .limit(MAX_VIEWERS)
            )
            return [ViewerRead.model_validate(r) for r in rows]


def _upsert_views(session: AsyncSession, rows: list[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT: a row's read time only moves forward (flushes may interleave)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ContactView).values(rows)
    return statement.on_conflict_do_update(
        index_elements=["user_id", "contact_id"],
        set_={"viewed_at": statement.excluded.viewed_at},
        where=ContactView.viewed_at < statement.excluded.viewed_at,
    )


@dataclass
class RedisMeter:
    redis: Redis
    prefix: str
    window: timedelta
    retention: timedelta

    async def record(
        self, user_id: str, contact_ids: Sequence[str], *, limit: int, now: datetime
    ) -> int:
        moment = now.timestamp()
        args: list[Any] = [
            moment,
            moment - self.window.total_seconds(),
            limit,
            user_id,
            f"{self.prefix}viewers:",
            int(self.retention.total_seconds()),
            *contact_ids,
        ]
        result = await self.redis.eval(_RECORD, 1, f"{self.prefix}reads:{user_id}", *args)
        return int(result)

    async def viewers(self, contact_id: str) -> list[ViewerRead]:
        found = await self.redis.zrevrange(
            f"{self.prefix}viewers:{contact_id}", 0, MAX_VIEWERS - 1, withscores=True
        )
        return [
            ViewerRead.model_validate(
                {"user_id": user.decode(), "viewed_at": datetime.fromtimestamp(score, UTC)}
            )
            for user, score in cast(list[tuple[bytes, float]], found)
        ]


class ReadGuard:
    """Meters the contacts each request shows and refuses bulk reading (429, one alert)."""

    def __init__(self, settings: ContactsSettings, db: Database):
        self.db = db
        self.window = timedelta(seconds=settings.read_window_seconds)
        self.limits = {
            Role.SALES_REP: settings.read_limit_sales_rep,
            Role.HEAD_OF_SALES: settings.read_limit_head_of_sales,
            Role.MARKETER: settings.read_limit_marketer,
            Role.ADMIN: settings.read_limit_admin,
        }
        self.meter: Meter
        if settings.redis_url:
            self.meter = RedisMeter(
                Redis.from_url(settings.redis_url),
                "crm:contacts:",
                self.window,
                timedelta(days=settings.read_views_retention_days),
            )
        else:
            self.meter = DatabaseMeter(db, self.window)

    async def check(self, principal: Principal, contact_ids: Sequence[str]) -> None:
        """Record these reads, or answer 429 (and alert once per window) if over the limit."""
        wanted = list(dict.fromkeys(contact_ids))
        if not wanted:
            return
        limit = self.limits.get(principal.role, 0)
        now = utcnow()
        count = await self.meter.record(principal.user_id, wanted, limit=limit, now=now)
        if limit and count > limit:
            await self._alert_once(principal.user_id, count, limit, now)
            raise TooManyRequests(
                f"More than {limit} different contacts read within "
                f"{int(self.window.total_seconds())} s; try again later.",
                retry_after=int(self.window.total_seconds()),
            )

    async def _alert_once(self, user_id: str, count: int, limit: int, now: datetime) -> None:
        """Emit `bulk_read_suspected` unless this user's window already had one.

        The claim is a conditional write in the same transaction as the outbox
        row, so concurrent refusals (and replicas) emit it once.
        """
        async with self.db.transaction() as session:
            table = cast(Table, BulkReadAlert.__table__)
            await insert_ignoring_duplicates(
                session, table, [{"user_id": user_id, "alerted_at": now - 2 * self.window}]
            )
            claimed = await session.execute(
                update(BulkReadAlert)
                .where(
                    and_(
                        BulkReadAlert.user_id == user_id,
                        BulkReadAlert.alerted_at <= now - self.window,
                    )
                )
                .values(alerted_at=now)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return
            event = BulkReadSuspected(
                user_id=user_id,
                distinct_contacts=count,
                threshold=limit,
                window_started_at=(now - self.window).isoformat(),
                at=now.isoformat(),
            )
            await add_event(session, event, subject=user_id, actor=user_id)

    async def viewers(self, principal: Principal, contact_id: str) -> list[ViewerRead]:
        """Who read this contact (admins): 404 for no such (or an erased) contact."""
        if principal.role is not Role.ADMIN:
            raise Forbidden("Only admins may see who viewed a contact.")
        async with self.db.session() as session:
            exists = await session.scalar(
                select(Contact.id).where(Contact.id == contact_id, Contact.erased_at.is_(None))
            )
        if exists is None:
            raise NotFound(f"No contact {contact_id}.")
        return await self.meter.viewers(contact_id)


async def read_guard(request: Request) -> ReadGuard:
    """The app's guard, made on first use (async: on the event loop, which runs its flusher)."""
    guard: ReadGuard | None = getattr(request.app.state, "read_guard", None)
    if guard is None:
        guard = ReadGuard(request.app.state.settings, request.app.state.db)
        request.app.state.read_guard = guard
        if isinstance(guard.meter, DatabaseMeter):
            # Cancelled at shutdown, before the database closes: it flushes once more then.
            request.app.state.runtime.spawn(guard.meter.run(), "contacts-read-meter")
    return guard


ReadGuardDep = Annotated[ReadGuard, Depends(read_guard)]
