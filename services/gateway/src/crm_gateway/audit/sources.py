"""Where audit entries come from: the gateway's own tables and each service's GET /audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from pydantic import ValidationError
from sqlalchemy import Select, select

from crm_gateway.audit.models import SecurityEvent
from crm_gateway.audit.schemas import AuditEntry
from crm_gateway.auth.models import LoginEvent
from crm_kernel.app import API_PREFIX
from crm_kernel.db import Database
from crm_kernel.pagination import MAX_LIMIT, paginate, parse_sort

# Every source is read in pages of this size, so a position (page cursor, index) stays valid.
PAGE_SIZE = MAX_LIMIT


@dataclass(frozen=True)
class AuditFilter:
    actor_id: str | None = None
    record_id: str | None = None
    record_type: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def admits(self, entry: AuditEntry) -> bool:
        """Applied again by the gateway: a service may not know every filter."""
        return (
            (self.actor_id is None or entry.actor_id == self.actor_id)
            and (self.record_id is None or entry.record_id == self.record_id)
            and (self.record_type is None or entry.record_type == self.record_type)
            and (self.action is None or entry.action == self.action)
            and (self.until is None or entry.at <= self.until)
        )


class Unavailable(Exception):
    """A source that could not be read now; the reason is shown to the admin."""


class AuditSource(Protocol):
    name: str

    async def page(
        self, cursor: str | None, where: AuditFilter
    ) -> tuple[list[AuditEntry], str | None]: ...


def _window(query: Select[Any], column: Any, where: AuditFilter) -> Select[Any]:
    if where.since is not None:
        query = query.where(column >= where.since)
    if where.until is not None:
        query = query.where(column <= where.until)
    return query


@dataclass
class LoginSource:
    """Login attempts (`login_events`): action `login.<outcome>` on the user."""

    db: Database
    name: str = "gateway"

    async def page(
        self, cursor: str | None, where: AuditFilter
    ) -> tuple[list[AuditEntry], str | None]:
        if where.record_type not in (None, "user") or (
            where.action is not None and not where.action.startswith("login.")
        ):
            return [], None
        query = _window(select(LoginEvent), LoginEvent.occurred_at, where)
        if where.action is not None:
            query = query.where(LoginEvent.outcome == where.action.removeprefix("login."))
        for wanted in {where.actor_id, where.record_id} - {None}:
            query = query.where(LoginEvent.user_id == wanted)
        keys = parse_sort(
            None, {"occurred_at": LoginEvent.occurred_at}, "-occurred_at", LoginEvent.id
        )
        async with self.db.session() as session:
            rows, next_cursor = await paginate(session, query, keys, limit=PAGE_SIZE, cursor=cursor)
        return [
            AuditEntry(
                id=e.id,
                service=self.name,
                at=e.occurred_at,
                actor_id=e.user_id,
                action=f"login.{e.outcome}",
                record_type="user",
                record_id=e.user_id,
                detail={"email": e.email, "ip": e.ip, "user_agent": e.user_agent},
            )
            for (e,) in rows
        ], next_cursor


@dataclass
class SecuritySource:
    """Offboarding and two-factor changes (`security_events`)."""

    db: Database
    name: str = "gateway"

    async def page(
        self, cursor: str | None, where: AuditFilter
    ) -> tuple[list[AuditEntry], str | None]:
        query = _window(select(SecurityEvent), SecurityEvent.occurred_at, where)
        for column, wanted in (
            (SecurityEvent.actor_id, where.actor_id),
            (SecurityEvent.record_id, where.record_id),
            (SecurityEvent.record_type, where.record_type),
            (SecurityEvent.action, where.action),
        ):
            if wanted is not None:
                query = query.where(column == wanted)
        keys = parse_sort(
            None, {"occurred_at": SecurityEvent.occurred_at}, "-occurred_at", SecurityEvent.id
        )
        async with self.db.session() as session:
            rows, next_cursor = await paginate(session, query, keys, limit=PAGE_SIZE, cursor=cursor)
        return [
            AuditEntry(
                id=e.id,
                service=self.name,
                at=e.occurred_at,
                actor_id=e.actor_id,
                action=e.action,
                record_type=e.record_type,
                record_id=e.record_id,
                detail=e.detail,
            )
            for (e,) in rows
        ], next_cursor


@dataclass
class ServiceSource:
    """A service's `GET /api/v1/audit`, asked with the admin's own token."""

    name: str
    session: aiohttp.ClientSession
    base_url: str
    headers: dict[str, str]
    timeout: float

    async def page(
        self, cursor: str | None, where: AuditFilter
    ) -> tuple[list[AuditEntry], str | None]:
        params = {
            "limit": str(PAGE_SIZE),
            "cursor": cursor,
            "actor_id": where.actor_id,
            "record_id": where.record_id,
            "record_type": where.record_type,
            "action": where.action,
            "from": where.since.isoformat() if where.since else None,
            "to": where.until.isoformat() if where.until else None,
        }
        try:
            async with self.session.get(
                f"{self.base_url}{API_PREFIX}/audit",
                params={k: v for k, v in params.items() if v is not None},
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if response.status == 404:
                    raise Unavailable("no audit")
                if response.status != 200:
                    raise Unavailable(f"status {response.status}")
                body = await response.json(content_type=None)
        except TimeoutError as exc:
            raise Unavailable("timeout") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise Unavailable(f"unreachable: {type(exc).__name__}") from exc
        try:
            items = [AuditEntry(**{**item, "service": self.name}) for item in body["items"]]
        except (KeyError, TypeError, ValidationError) as exc:
            raise Unavailable("unexpected answer") from exc
        next_cursor = body.get("next_cursor")
        return items, next_cursor if isinstance(next_cursor, str) else None
