"""Offboarding: a leaving user is deactivated, cut off, and their records handed to a successor."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_gateway.apikeys.models import ApiKey
from crm_gateway.audit.events import record_security_event
from crm_gateway.auth.service import revoke_user_sessions
from crm_gateway.orm import utcnow
from crm_gateway.teams.models import team_members
from crm_gateway.users.events import user_event
from crm_gateway.users.models import User
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.gateway import UserOffboarded, UserUpdated
from crm_kernel.db import Database
from crm_kernel.outbox import add_event
from crm_kernel.problems import Conflict, Forbidden, NotFound, Unprocessable


@dataclass(frozen=True)
class Offboarded:
    user: User
    successor_id: str
    revoked_api_key_ids: list[str]


def _bad_successor(message: str) -> Unprocessable:
    return Unprocessable(
        f"The successor {message}.",
        errors=[{"field": "successor_id", "location": "body", "message": message}],
    )


async def managed_user_ids(session: AsyncSession, head_id: str) -> set[str]:
    """Everyone in the teams a head of sales belongs to (themselves included)."""
    my_teams = select(team_members.c.team_id).where(team_members.c.user_id == head_id)
    rows = await session.scalars(
        select(team_members.c.user_id).where(team_members.c.team_id.in_(my_teams))
    )
    return {*rows, head_id}


async def _ensure_an_admin_remains(session: AsyncSession, user: User) -> None:
    if user.role != Role.ADMIN or not user.is_active:
        return
    others = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True), User.id != user.id)
    )
    if not others:
        raise Conflict("The last active admin cannot be offboarded.")


async def offboard_user(
    db: Database, *, user_id: str, successor_id: str, actor: Principal
) -> Offboarded:
    """Deactivate, end sessions and API keys, publish UserOffboarded; one transaction.

    An admin may offboard anyone; a head of sales a member of their teams,
    handing over to someone in their teams (or to themselves). Anyone else
    is refused; a user the caller does not manage is 404, as if absent.
    """
    if not (actor.is_admin or actor.role is Role.HEAD_OF_SALES):
        raise Forbidden("Only admins and heads of sales offboard users.")
    if successor_id == user_id:
        raise _bad_successor("must be another user")
    now = utcnow()
    try:
        async with db.transaction() as session:
            managed = None if actor.is_admin else await managed_user_ids(session, actor.user_id)
            user = await session.get(User, user_id)
            if user is None or (managed is not None and user_id not in managed):
                raise NotFound("No such user.")
            if managed is not None and user.role == Role.ADMIN:
                raise Forbidden("Only an admin offboards an admin.")
            if user.offboarded_at is not None:
                raise Conflict("The user was already offboarded.")
            successor = await session.get(User, successor_id)
            if successor is None or (managed is not None and successor_id not in managed):
                raise _bad_successor("does not exist")
            if not successor.is_active or successor.offboarded_at is not None:
                raise _bad_successor("is not active")
            await _ensure_an_admin_remains(session, user)
            user.is_active = False
            user.offboarded_at = now
            user.updated_at = now
            await session.flush()
            await revoke_user_sessions(session, user_id=user.id)
            revoked = list(
                await session.scalars(
                    select(ApiKey.id).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
                )
            )
            if revoked:
                await session.execute(
                    update(ApiKey).where(ApiKey.id.in_(revoked)).values(revoked_at=now)
                )
            await add_event(
                session, user_event(UserUpdated, user), subject=user.id, actor=actor.user_id
            )
            await add_event(
                session,
                UserOffboarded(
                    user_id=user.id,
                    successor_id=successor_id,
                    actor_id=actor.user_id,
                    at=now.isoformat(),
                ),
                subject=user.id,
                actor=actor.user_id,
            )
            record_security_event(
                session,
                actor_id=actor.user_id,
                action="user.offboarded",
                record_id=user.id,
                detail={"successor_id": successor_id, "revoked_api_keys": len(revoked)},
            )
    except StaleDataError as exc:
        raise Conflict("The user was changed at the same time; try again.") from exc
    return Offboarded(user=user, successor_id=successor_id, revoked_api_key_ids=revoked)
