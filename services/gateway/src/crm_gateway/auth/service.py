"""Auth use cases: login, refresh-token rotation with reuse detection, logout, session checks."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_gateway.auth.models import AuthSession, LoginEvent, RefreshToken
from crm_gateway.auth.passwords import hash_password, needs_rehash, verify_password
from crm_gateway.auth.throttle import LoginThrottle
from crm_gateway.auth.totp import TotpSecrets, accepted_step
from crm_gateway.orm import utcnow
from crm_gateway.settings import GatewaySettings
from crm_gateway.users.models import User
from crm_kernel.auth import TokenKeys
from crm_kernel.db import Database
from crm_kernel.pagination import paginate, parse_sort
from crm_kernel.problems import NotFound, TooManyRequests, Unauthorized

if TYPE_CHECKING:
    from crm_gateway.auth.guard import SessionGuard

WRONG_CREDENTIALS = "Wrong e-mail or password."
# An access-token claim: the user's role requires 2FA and it is not set up yet.
SETUP_CLAIM = "totp_setup"


class TotpRequired(Unauthorized):
    """The password was right; the account also needs a code from the authenticator app."""

    slug = "totp-required"

    def __init__(self, detail: str):
        super().__init__(detail, errors=[{"field": "totp", "location": "body", "message": detail}])


INVALID_REFRESH = "The refresh token is not valid; log in again."


@dataclass(frozen=True)
class Client:
    """Where a login or refresh comes from, kept with the session for the user's review."""

    ip: str
    user_agent: str | None = None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str


@dataclass(frozen=True)
class SessionState:
    user_id: str
    live: bool


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _access_token(
    keys: TokenKeys, settings: GatewaySettings, user: User, session_id: str
) -> tuple[str, int]:
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, object] = {
        "role": user.role,
        "team_ids": user.team_ids,
        "email": user.email,
        "sid": session_id,
    }
    if user.role in settings.totp_roles() and not user.totp_enabled:
        claims[SETUP_CLAIM] = True
    token, _ = keys.issue(subject=user.id, claims=claims, lifetime=lifetime)
    return token, int(lifetime.total_seconds())


def _add_refresh_token(
    session: AsyncSession,
    *,
    user_id: str,
    family_id: str,
    client: Client,
    settings: GatewaySettings,
) -> str:
    """A new refresh token in the family; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        RefreshToken(
            token_hash=_token_hash(token),
            family_id=family_id,
            user_id=user_id,
            expires_at=now + timedelta(days=settings.refresh_token_days),
            created_at=now,
            user_agent=(client.user_agent or "")[:400] or None,
            ip=client.ip[:64],
        )
    )
    return token


async def _revoke_family(session: AsyncSession, family_id: str) -> None:
    now = utcnow()
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == family_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_user_sessions(session: AsyncSession, *, user_id: str) -> None:
    """End every session of a user, inside the caller's transaction."""
    now = utcnow()
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def login(
    db: Database,
    *,
    keys: TokenKeys,
    settings: GatewaySettings,
    throttle: LoginThrottle,
    email: str,
    password: str,
    client: Client,
    totp: str | None = None,
    totp_secrets: TotpSecrets | None = None,
) -> TokenPair:
    """Check the password (and the TOTP code if 2FA is on) and open a session.

    401 alike for unknown e-mail and wrong password; with 2FA on, a right
    password without a code is a `totp-required` 401 (not a failed attempt).
    """
    email = email.strip().lower()
    try:
        await throttle.check(email=email, ip=client.ip)
    except TooManyRequests:
        await _record_login(db, email=email, user_id=None, outcome="throttled", client=client)
        raise
    async with db.session() as session:
        user = await session.scalar(select(User).where(User.email == email))
    correct = await verify_password(user.password_hash if user else None, password)
    if user is None or not correct or not user.is_active:
        await throttle.failed(email=email, ip=client.ip)
        await _record_login(
            db, email=email, user_id=user.id if user else None, outcome="failure", client=client
        )
        raise Unauthorized(WRONG_CREDENTIALS)
    step = None
    if user.totp_enabled:
        secret = (
            totp_secrets.decrypt(user.totp_secret) if totp_secrets and user.totp_secret else None
        )
        if not totp:
            raise TotpRequired("Enter the code from your authenticator app as `totp`.")
        step = accepted_step(secret, totp, last_step=user.totp_last_step) if secret else None
        if step is None:
            await throttle.failed(email=email, ip=client.ip)
            await _record_login(db, email=email, user_id=user.id, outcome="failure", client=client)
            raise TotpRequired("The code is wrong, expired or already used.")
    await throttle.succeeded(email=email, ip=client.ip)
    new_hash = await hash_password(password) if needs_rehash(user.password_hash) else None
    async with db.transaction() as session:
        if new_hash is not None:
            # A bulk UPDATE: not a change of the user others care about, so
            # neither a new version nor an event.
            await session.execute(
                update(User).where(User.id == user.id).values(password_hash=new_hash)
            )
        if step is not None:
            # Only a later step: of two logins with the same code, one wins.
            used = await session.execute(
                update(User)
                .where(
                    User.id == user.id,
                    (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
                )
                .values(totp_last_step=step)
                .execution_options(synchronize_session=False)
            )
            if used.rowcount != 1:  # type: ignore[attr-defined]
                raise TotpRequired("The code is wrong, expired or already used.")
        auth_session = AuthSession(
            user_id=user.id,
            created_at=utcnow(),
            user_agent=(client.user_agent or "")[:400] or None,
            ip=client.ip[:64],
        )
        session.add(auth_session)
        session.add(_login_event(email=email, user_id=user.id, outcome="success", client=client))
        await session.flush()
        refresh_token = _add_refresh_token(
            session, user_id=user.id, family_id=auth_session.id, client=client, settings=settings
        )
    access_token, expires_in = _access_token(keys, settings, user, auth_session.id)
    return TokenPair(access_token, refresh_token, expires_in, auth_session.id)


def _login_event(*, email: str, user_id: str | None, outcome: str, client: Client) -> LoginEvent:
    return LoginEvent(
        occurred_at=utcnow(),
        email=email[:320],
        user_id=user_id,
        outcome=outcome,
        ip=client.ip[:64],
        user_agent=(client.user_agent or "")[:400] or None,
    )


async def _record_login(
    db: Database, *, email: str, user_id: str | None, outcome: str, client: Client
) -> None:
    """Audit a login that opened no session (in its own transaction)."""
    async with db.transaction() as session:
        session.add(_login_event(email=email, user_id=user_id, outcome=outcome, client=client))


LOGIN_SORTABLE = {"occurred_at": LoginEvent.occurred_at}


async def list_logins(
    db: Database,
    *,
    limit: int,
    cursor: str | None,
    user_id: str | None = None,
    email: str | None = None,
    outcome: str | None = None,
) -> tuple[list[LoginEvent], str | None]:
    """Login attempts, newest first, filtered by user, e-mail or outcome."""
    query = select(LoginEvent)
    if user_id is not None:
        query = query.where(LoginEvent.user_id == user_id)
    if email is not None:
        query = query.where(LoginEvent.email == email.strip().lower())
    if outcome is not None:
        query = query.where(LoginEvent.outcome == outcome)
    keys = parse_sort(None, LOGIN_SORTABLE, "-occurred_at", LoginEvent.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return [row[0] for row in rows], next_cursor


@dataclass(frozen=True)
class SessionInfo:
    id: str
    created_at: datetime
    last_refreshed_at: datetime
    ip: str | None
    user_agent: str | None


async def list_sessions(db: Database, *, user_id: str) -> list[SessionInfo]:
    """A user's live sessions, newest first, with when each last refreshed its tokens."""
    last_refresh = (
        select(RefreshToken.family_id, func.max(RefreshToken.created_at).label("at"))
        .where(RefreshToken.user_id == user_id)
        .group_by(RefreshToken.family_id)
        .subquery()
    )
    async with db.session() as session:
        rows = (
            await session.execute(
                select(AuthSession, last_refresh.c.at)
                .outerjoin(last_refresh, last_refresh.c.family_id == AuthSession.id)
                .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
                .order_by(AuthSession.created_at.desc(), AuthSession.id.desc())
            )
        ).all()
    return [
        SessionInfo(
            id=auth.id,
            created_at=auth.created_at,
            last_refreshed_at=at or auth.created_at,
            ip=auth.ip,
            user_agent=auth.user_agent,
        )
        for auth, at in rows
    ]


async def revoke_own_session(db: Database, *, user_id: str, session_id: str) -> None:
    """End one of the user's sessions; 404 for another user's (as for one that does not exist)."""
    async with db.transaction() as session:
        owner = await session.scalar(
            select(AuthSession.user_id).where(AuthSession.id == session_id)
        )
        if owner != user_id:
            raise NotFound("There is no such session of yours.")
        await _revoke_family(session, session_id)


async def refresh(
    db: Database,
    *,
    keys: TokenKeys,
    settings: GatewaySettings,
    guard: SessionGuard,
    refresh_token: str,
    client: Client,
) -> TokenPair:
    """Swap a refresh token for a new pair in the same session (rotation).

    A token presented a second time means it was copied: whoever holds the
    family is cut off (the session is revoked) and must log in again.
    """
    now = utcnow()
    issued: tuple[User, str] | None = None  # stays None when the token was reused
    async with db.transaction() as session:
        token = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == _token_hash(refresh_token))
        )
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise Unauthorized(INVALID_REFRESH)
        # Claim the token with a conditional UPDATE: of two concurrent uses,
        # exactly one sees a row change.
        claimed = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await _revoke_family(session, token.family_id)
        else:
            auth_session = await session.get(AuthSession, token.family_id)
            user = await session.get(User, token.user_id)
            if (
                auth_session is None
                or auth_session.revoked_at is not None
                or user is None
                or not user.is_active
            ):
                raise Unauthorized(INVALID_REFRESH)
            new_token = _add_refresh_token(
                session,
                user_id=user.id,
                family_id=token.family_id,
                client=client,
                settings=settings,
            )
            issued = (user, new_token)
    if issued is None:
        # Raised after the commit: the revocation must stick.
        guard.forget(token.family_id)
        raise Unauthorized("The refresh token was already used; the session is ended.")
    user, new_token = issued
    access_token, expires_in = _access_token(keys, settings, user, token.family_id)
    return TokenPair(access_token, new_token, expires_in, token.family_id)


async def logout(db: Database, *, session_id: str) -> None:
    """End a session: its refresh tokens and its access tokens stop working."""
    async with db.transaction() as session:
        await _revoke_family(session, session_id)


async def session_state(db: Database, *, session_id: str) -> SessionState | None:
    """Whose session this is and whether it is live (not revoked, user active)."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(AuthSession.user_id, AuthSession.revoked_at, User.is_active)
                .join(User, User.id == AuthSession.user_id)
                .where(AuthSession.id == session_id)
            )
        ).first()
    if row is None:
        return None
    return SessionState(user_id=row.user_id, live=row.revoked_at is None and row.is_active)
