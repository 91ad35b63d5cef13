"""Read metering: distinct contacts per user per sliding window, the 429 guard, its alert.

Each request that shows contacts costs one batched write: on Redis one script
call (a sorted set of contact ids per user, scored by read time, and one of
viewers per contact), otherwise one multi-row upsert into `contact_views` after
a count over its (user_id, viewed_at) index. A read that would go over the
limit is refused before it is recorded, so refused reads neither count nor
show up in "who viewed this client".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol, cast

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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


@dataclass
class DatabaseMeter:
    db: Database
    window: timedelta

    async def record(
        self, user_id: str, contact_ids: Sequence[str], *, limit: int, now: datetime
    ) -> int:
        async with self.db.transaction() as session:
            earlier = await session.scalar(
                select(func.count()).where(
                    ContactView.user_id == user_id,
                    ContactView.viewed_at > now - self.window,
                    ContactView.contact_id.not_in(contact_ids),
                )
            )
            count = int(earlier or 0) + len(contact_ids)
            if limit and count > limit:
                return count
            dialect = session.get_bind().dialect.name
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            statement = insert(ContactView).values(
                [{"user_id": user_id, "contact_id": c, "viewed_at": now} for c in contact_ids]
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["user_id", "contact_id"],
                    set_={"viewed_at": statement.excluded.viewed_at},
                )
            )
        return count

    async def viewers(self, contact_id: str) -> list[ViewerRead]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ContactView)
                .where(ContactView.contact_id == contact_id)
                .order_by(ContactView.viewed_at.desc(), ContactView.user_id)
                .limit(MAX_VIEWERS)
            )
            return [ViewerRead.model_validate(r) for r in rows]


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


def read_guard(request: Request) -> ReadGuard:
    """The app's guard (made on first use: the database exists once the app runs)."""
    guard: ReadGuard | None = getattr(request.app.state, "read_guard", None)
    if guard is None:
        guard = ReadGuard(request.app.state.settings, request.app.state.db)
        request.app.state.read_guard = guard
    return guard


ReadGuardDep = Annotated[ReadGuard, Depends(read_guard)]
