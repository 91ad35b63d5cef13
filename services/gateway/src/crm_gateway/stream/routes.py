"""GET /stream: server-sent events of what the caller may see, resumable by Last-Event-ID."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from crm_gateway.state import GatewayDep, ensure_setup_done, session_principal
from crm_gateway.stream.hub import StreamEvent
from crm_gateway.stream.positions import Positions, decode, encode
from crm_gateway.stream.visibility import Viewer
from crm_gateway.users.offboarding import managed_user_ids
from crm_kernel.auth import Principal, Role
from crm_kernel.db import Database
from crm_kernel.problems import DomainError, Unauthorized

router = APIRouter(tags=["stream"])

# How often a head of sales' team membership is looked up again during a stream.
TEAM_REFRESH_SECONDS = 60.0


async def _caller(request: Request, access_token: str | None) -> Principal:
    """The bearer header as everywhere; else `?access_token=` for browsers' EventSource.

    API keys never get here: they reach only the services' resources (apikeys/access.py).
    """
    if "authorization" in request.headers:
        return await session_principal(request)
    if not access_token:
        raise Unauthorized("A bearer token (header or ?access_token=) is required.")
    gateway = request.app.state.gateway
    principal: Principal = gateway.tokens.verify(access_token)
    if "api_key_id" in principal.claims:
        raise Unauthorized("This token is for the gateway's own use.")
    await gateway.guard.ensure_live(request.app.state.db, principal)
    ensure_setup_done(principal, request.url.path)
    return principal


async def _viewer(db: Database, principal: Principal) -> Viewer:
    viewer = Viewer(principal)
    if principal.role is Role.HEAD_OF_SALES:
        async with db.session() as session:
            viewer.managed = await managed_user_ids(session, principal.user_id)
    return viewer


def _frame(event: StreamEvent, positions: Positions) -> bytes:
    envelope = event.envelope
    body = orjson.dumps(
        {
            "id": envelope.id,
            "type": envelope.type,
            "time": envelope.time.isoformat(),
            "subject": envelope.subject,
            "data": envelope.data,
        }
    )
    return f"id: {encode(positions)}\nevent: {envelope.type}\ndata: ".encode() + body + b"\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def stream(
    request: Request,
    gateway: GatewayDep,
    access_token: Annotated[
        str | None,
        Query(max_length=4096, description="For EventSource, which cannot send headers."),
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=1000)] = None,
) -> StreamingResponse:
    """Live events the caller may see; `id:` is the stream positions, for Last-Event-ID."""
    principal = await _caller(request, access_token)
    db: Database = request.app.state.db
    viewer = await _viewer(db, principal)
    hub = gateway.hub
    since = decode(last_event_id)
    heartbeat = gateway.settings.stream_heartbeat_seconds

    async def still_allowed() -> bool:
        expires = principal.claims.get("exp")
        if isinstance(expires, int | float) and expires <= time.time():
            return False
        try:
            await gateway.guard.ensure_live(db, principal)
        except DomainError:
            return False
        return True

    async def events() -> AsyncIterator[bytes]:
        # Registered as the body starts, so a connection that never starts leaves nothing behind.
        listener, now = hub.listen()
        positions = {service: (since or now).get(service, seq) for service, seq in now.items()}
        seen_by, team_checked = viewer, time.monotonic()
        try:
            yield b"retry: 3000\n: connected\n\n"
            if since is not None:
                async for event in hub.replay(since, now):
                    positions[event.service] = event.seq
                    if seen_by.sees(event.envelope.type, event.envelope.data):
                        yield _frame(event, positions)
            last_sent = time.monotonic()
            while not listener.overflowed.is_set():
                if time.monotonic() - last_sent >= heartbeat:
                    if not await still_allowed():
                        return
                    if time.monotonic() - team_checked > TEAM_REFRESH_SECONDS:
                        seen_by, team_checked = await _viewer(db, principal), time.monotonic()
                    # A comment keeps proxies from closing the connection; the id
                    # moves the client's Last-Event-ID past what it was not shown.
                    yield f": heartbeat\nid: {encode(positions)}\n\n".encode()
                    last_sent = time.monotonic()
                    continue
                try:
                    event = await asyncio.wait_for(
                        listener.queue.get(), timeout=last_sent + heartbeat - time.monotonic()
                    )
                except TimeoutError:
                    continue
                if event.seq <= positions.get(event.service, 0):
                    continue  # already replayed, or seen through another replica
                positions[event.service] = event.seq
                if seen_by.sees(event.envelope.type, event.envelope.data):
                    yield _frame(event, positions)
        finally:
            hub.remove(listener)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
