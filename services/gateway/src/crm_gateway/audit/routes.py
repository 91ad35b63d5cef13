"""GET /audit (admins): the audit of every service and the gateway's security events, merged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from crm_gateway.audit.merge import merged_page
from crm_gateway.audit.schemas import AuditPage
from crm_gateway.audit.sources import (
    AuditFilter,
    AuditSource,
    LoginSource,
    SecuritySource,
    ServiceSource,
)
from crm_gateway.proxy import request_headers
from crm_gateway.state import GatewayDep
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/audit", tags=["audit"])

# The services asked for their audit; one without GET /audit is marked, not an error.
AUDITED_SERVICES = ("contacts", "deals", "campaigns", "notifications")
Text = Annotated[str | None, Query(max_length=100)]


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC (the API's times are UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get("")
async def list_audit(
    request: Request,
    _admin: AdminUser,
    db: DatabaseDep,
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
    actor_id: Text = None,
    record_id: Text = None,
    record_type: Text = None,
    action: Text = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
) -> AuditPage:
    """Who did what to which record, in every service, newest first.

    Logins (`login.success|failure|throttled`) and security changes
    (`user.offboarded`, `user.2fa_enabled`, ...) come from the gateway; the rest
    from each service's own audit, asked with the caller's token.
    """
    forwarded = request_headers(request)
    headers = {k: v for k, v in forwarded.items() if k in ("authorization", "x-request-id")}
    sources: list[AuditSource] = [LoginSource(db), SecuritySource(db)]
    sources.extend(
        ServiceSource(
            name=service,
            session=gateway.upstreams.session,
            base_url=gateway.upstreams.url(service),
            headers=headers,
            timeout=gateway.settings.overview_timeout,
        )
        for service in AUDITED_SERVICES
    )
    where = AuditFilter(
        actor_id=actor_id,
        record_id=record_id,
        record_type=record_type,
        action=action,
        since=_utc(since),
        until=_utc(until),
    )
    return await merged_page(sources, where=where, limit=limit, cursor=cursor)
