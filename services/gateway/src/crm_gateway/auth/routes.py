"""Auth endpoints: login, refresh, logout, me, the caller's sessions, the login audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_gateway.auth import service
from crm_gateway.auth.schemas import (
    LoginEventRead,
    LoginOutcome,
    LoginRequest,
    RefreshRequest,
    SessionRead,
    TokenResponse,
)
from crm_gateway.state import GatewayDep, client_ip
from crm_gateway.users.schemas import UserRead
from crm_gateway.users.service import get_user
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser, CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.problems import NotFound, Unauthorized

router = APIRouter(prefix="/auth", tags=["auth"])


def _client(request: Request) -> service.Client:
    return service.Client(ip=client_ip(request), user_agent=request.headers.get("user-agent"))


def _tokens(pair: service.TokenPair, response: Response) -> TokenResponse:
    # Tokens must not be kept by any cache between us and the client.
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


@router.post("/login")
async def login(
    data: LoginRequest,
    request: Request,
    response: Response,
    db: DatabaseDep,
    gateway: GatewayDep,
) -> TokenResponse:
    """Exchange e-mail and password for an access token and a refresh token."""
    pair = await service.login(
        db,
        keys=gateway.keys,
        settings=gateway.settings,
        throttle=gateway.throttle,
        email=data.email,
        password=data.password,
        client=_client(request),
        totp=data.totp,
        totp_secrets=gateway.totp,
    )
    return _tokens(pair, response)


@router.post("/refresh")
async def refresh(
    data: RefreshRequest,
    request: Request,
    response: Response,
    db: DatabaseDep,
    gateway: GatewayDep,
) -> TokenResponse:
    """Exchange a refresh token (once) for a new pair; a reused one ends the session."""
    pair = await service.refresh(
        db,
        keys=gateway.keys,
        settings=gateway.settings,
        guard=gateway.guard,
        refresh_token=data.refresh_token,
        client=_client(request),
    )
    return _tokens(pair, response)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: CurrentUser, db: DatabaseDep, gateway: GatewayDep) -> None:
    """End the caller's session: its refresh and access tokens stop working."""
    assert caller.session_id is not None  # the session guard refuses tokens without one
    await service.logout(db, session_id=caller.session_id)
    gateway.guard.forget(caller.session_id)


@router.get("/me")
async def me(caller: CurrentUser, db: DatabaseDep) -> UserRead:
    """The caller's own user record."""
    try:
        user = await get_user(db, user_id=caller.user_id)
    except NotFound as exc:
        raise Unauthorized("The user of this token no longer exists.") from exc
    return UserRead.model_validate(user)


@router.get("/sessions")
async def list_sessions(caller: CurrentUser, db: DatabaseDep) -> Page[SessionRead]:
    """The caller's live sessions, newest first (all on one page: a user has few)."""
    sessions = await service.list_sessions(db, user_id=caller.user_id)
    return Page(
        items=[
            SessionRead(
                id=s.id,
                created_at=s.created_at,
                last_refreshed_at=s.last_refreshed_at,
                ip=s.ip,
                user_agent=s.user_agent,
                current=s.id == caller.session_id,
            )
            for s in sessions
        ],
        next_cursor=None,
    )


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(
    session_id: str, caller: CurrentUser, db: DatabaseDep, gateway: GatewayDep
) -> None:
    """End one of the caller's own sessions (e.g. a lost phone); 404 for anyone else's."""
    await service.revoke_own_session(db, user_id=caller.user_id, session_id=session_id)
    gateway.guard.forget(session_id)


@router.get("/logins")
async def list_logins(
    _admin: AdminUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
    user_id: str | None = None,
    email: str | None = None,
    outcome: LoginOutcome | None = None,
) -> Page[LoginEventRead]:
    """Login attempts (success, failure, throttled) with IP and user agent, newest first."""
    events, next_cursor = await service.list_logins(
        db, limit=limit, cursor=cursor, user_id=user_id, email=email, outcome=outcome
    )
    return Page(items=[LoginEventRead.model_validate(e) for e in events], next_cursor=next_cursor)
