"""/me/2fa: a user sets up, enables and disables their own two-factor authentication."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession

from crm_gateway.audit.events import record_security_event
from crm_gateway.auth.schemas import TotpCode, TotpSetup, TotpStatus
from crm_gateway.auth.totp import accepted_step
from crm_gateway.state import GatewayDep
from crm_gateway.users.models import User
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser, Principal
from crm_kernel.problems import Conflict, Forbidden, Unauthorized, Unprocessable

router = APIRouter(prefix="/me/2fa", tags=["two-factor"])


def _wrong_code() -> Unprocessable:
    return Unprocessable(
        "The code is wrong, expired or already used.",
        errors=[{"field": "code", "location": "body", "message": "wrong code"}],
    )


def _person(caller: Principal) -> str:
    if "api_key_id" in caller.claims:
        raise Forbidden("Two-factor authentication is for people, not API keys.")
    return caller.user_id


async def _user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise Unauthorized("The user of this token no longer exists.")
    return user


@router.get("")
async def totp_status(caller: CurrentUser, db: DatabaseDep, gateway: GatewayDep) -> TotpStatus:
    """Whether 2FA is on for the caller, and whether their role requires it."""
    async with db.session() as session:
        user = await _user(session, _person(caller))
    return TotpStatus(
        enabled=user.totp_enabled, required=user.role in gateway.settings.totp_roles()
    )


@router.post("/setup")
async def setup(caller: CurrentUser, db: DatabaseDep, gateway: GatewayDep) -> TotpSetup:
    """A new secret, shown this once; 2FA is on only after `enable` with a code from it."""
    secrets = gateway.totp
    secret = secrets.new_secret()
    async with db.transaction() as session:
        user = await _user(session, _person(caller))
        if user.totp_enabled:
            raise Conflict("Two-factor authentication is already on; disable it first.")
        user.totp_pending_secret = secrets.encrypt(secret)
        email = user.email
    return TotpSetup(secret=secret, otpauth_uri=secrets.uri(secret, email))


@router.post("/enable", status_code=status.HTTP_204_NO_CONTENT)
async def enable(data: TotpCode, caller: CurrentUser, db: DatabaseDep, gateway: GatewayDep) -> None:
    """Turn 2FA on with a code from the secret of `setup`; logins then ask for `totp`."""
    async with db.transaction() as session:
        user = await _user(session, _person(caller))
        if user.totp_enabled:
            raise Conflict("Two-factor authentication is already on.")
        pending = gateway.totp.decrypt(user.totp_pending_secret or "")
        if pending is None:
            raise Conflict("Call /me/2fa/setup first.")
        step = accepted_step(pending, data.code, last_step=None)
        if step is None:
            raise _wrong_code()
        user.totp_secret, user.totp_pending_secret = user.totp_pending_secret, None
        user.totp_enabled, user.totp_last_step = True, step
        record_security_event(
            session, actor_id=user.id, action="user.2fa_enabled", record_id=user.id
        )


@router.post("/disable", status_code=status.HTTP_204_NO_CONTENT)
async def disable(
    data: TotpCode, caller: CurrentUser, db: DatabaseDep, gateway: GatewayDep
) -> None:
    """Turn 2FA off with a current code; not for a role that requires it."""
    async with db.transaction() as session:
        user = await _user(session, _person(caller))
        if not user.totp_enabled:
            raise Conflict("Two-factor authentication is not on.")
        if user.role in gateway.settings.totp_roles():
            raise Conflict("Your role requires two-factor authentication.")
        secret = gateway.totp.decrypt(user.totp_secret or "")
        step = accepted_step(secret, data.code, last_step=user.totp_last_step) if secret else None
        if step is None:
            raise _wrong_code()
        user.totp_secret, user.totp_enabled, user.totp_last_step = None, False, None
        record_security_event(
            session, actor_id=user.id, action="user.2fa_disabled", record_id=user.id
        )
