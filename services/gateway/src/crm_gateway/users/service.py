"""User use cases: each one transaction that also writes its event to the outbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_gateway.auth.passwords import hash_password
from crm_gateway.auth.service import revoke_user_sessions
from crm_gateway.orm import utcnow
from crm_gateway.settings import GatewaySettings
from crm_gateway.teams.models import Team
from crm_gateway.users.events import user_event
from crm_gateway.users.models import User
from crm_gateway.users.schemas import PASSWORD_MIN_LENGTH, UserCreate, UserUpdate
from crm_kernel.auth import Role
from crm_kernel.contracts.gateway import UserCreated, UserUpdated
from crm_kernel.db import Database
from crm_kernel.outbox import add_event
from crm_kernel.pagination import paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed, Unprocessable
from crm_kernel.versioning import check_version

log = logging.getLogger(__name__)

SORTABLE = {
    "email": User.email,
    "full_name": User.full_name,
    "created_at": User.created_at,
}


def _duplicate_email() -> Conflict:
    return Conflict(
        "A user with this e-mail already exists.",
        errors=[{"field": "email", "location": "body", "message": "already in use"}],
    )


async def _teams(session: AsyncSession, team_ids: Sequence[str]) -> list[Team]:
    """The teams named, or 422 naming `team_ids` if any does not exist."""
    wanted = set(team_ids)
    if not wanted:
        return []
    teams = list((await session.scalars(select(Team).where(Team.id.in_(wanted)))).all())
    unknown = sorted(wanted - {team.id for team in teams})
    if unknown:
        raise Unprocessable(
            f"Unknown team id(s): {', '.join(unknown)}.",
            errors=[
                {"field": "team_ids", "location": "body", "message": f"unknown team {team_id}"}
                for team_id in unknown
            ],
        )
    return teams


async def _get(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def _email_taken(session: AsyncSession, email: str) -> bool:
    found = await session.scalar(select(User.id).where(User.email == email.lower()))
    return found is not None


async def create_user(db: Database, *, data: UserCreate, actor: str | None) -> User:
    """Create a user and publish UserCreated; 409 if the e-mail is taken."""
    password_hash = await hash_password(data.password)
    try:
        async with db.transaction() as session:
            if await _email_taken(session, data.email):
                raise _duplicate_email()
            now = utcnow()
            user = User(
                email=data.email.lower(),
                full_name=data.full_name,
                role=data.role.value,
                is_active=data.is_active,
                password_hash=password_hash,
                teams=await _teams(session, data.team_ids),
                created_at=now,
                updated_at=now,
            )
            session.add(user)
            await session.flush()
            await add_event(session, user_event(UserCreated, user), subject=user.id, actor=actor)
    except IntegrityError as exc:
        # Another request created the same e-mail between our check and our insert.
        raise _duplicate_email() from exc
    return user


async def get_user(db: Database, *, user_id: str) -> User:
    """One user, or 404."""
    async with db.session() as session:
        return await _get(session, user_id)


async def list_users(
    db: Database,
    *,
    limit: int,
    cursor: str | None,
    sort: str | None,
    role: Role | None = None,
    team_id: str | None = None,
    is_active: bool | None = None,
) -> tuple[list[User], str | None]:
    """A page of users, filtered by role, team and activity."""
    query = select(User)
    if role is not None:
        query = query.where(User.role == role.value)
    if is_active is not None:
        query = query.where(User.is_active == is_active)
    if team_id is not None:
        query = query.where(User.teams.any(Team.id == team_id))
    keys = parse_sort(sort, SORTABLE, "created_at", User.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return [row[0] for row in rows], next_cursor


async def _ensure_an_admin_remains(session: AsyncSession, user: User, data: UserUpdate) -> None:
    """409 if the change would leave no active admin to manage the others."""
    loses_admin = (data.role is not None and data.role is not Role.ADMIN) or (
        data.is_active is False
    )
    if not (user.role == Role.ADMIN and user.is_active and loses_admin):
        return
    others = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.is_active.is_(True), User.id != user.id)
    )
    if not others:
        raise Conflict("The last active admin cannot be demoted or deactivated.")


async def update_user(
    db: Database,
    *,
    user_id: str,
    data: UserUpdate,
    expected_version: int | None,
    actor: str | None,
) -> User:
    """Change a user and publish UserUpdated; 412 if the version is stale.

    Deactivating a user or setting a new password ends their sessions, so a
    departed manager or a leaked password loses access at once.
    """
    password_hash = await hash_password(data.password) if data.password is not None else None
    try:
        async with db.transaction() as session:
            user = await _get(session, user_id)
            check_version(user.version, expected_version, data.version)
            await _ensure_an_admin_remains(session, user, data)
            if data.full_name is not None:
                user.full_name = data.full_name
            if data.role is not None:
                user.role = data.role.value
            if data.team_ids is not None:
                user.teams = await _teams(session, data.team_ids)
            if data.is_active is not None:
                user.is_active = data.is_active
            if password_hash is not None:
                user.password_hash = password_hash
            # Always touched, so the row is updated (and its version bumped)
            # even when only the team membership changed.
            user.updated_at = utcnow()
            await session.flush()
            if data.is_active is False or password_hash is not None:
                await revoke_user_sessions(session, user_id=user.id)
            await add_event(session, user_event(UserUpdated, user), subject=user.id, actor=actor)
    except StaleDataError as exc:
        # A concurrent edit committed between our read and our write.
        raise PreconditionFailed("The user was changed by someone else; reload it.") from exc
    return user


async def bootstrap_admin(db: Database, settings: GatewaySettings) -> User | None:
    """Create the first admin from CRM_ADMIN_EMAIL/CRM_ADMIN_PASSWORD if it does not exist.

    Idempotent, and safe when several replicas start at once: the unique
    e-mail lets one win and the others find the conflict.
    """
    if not settings.admin_password:
        log.warning("CRM_ADMIN_PASSWORD is not set: no admin is bootstrapped")
        return None
    email = settings.admin_email.strip().lower()
    async with db.session() as session:
        if await _email_taken(session, email):
            return None
    if len(settings.admin_password) < PASSWORD_MIN_LENGTH:
        log.error(
            "CRM_ADMIN_PASSWORD is shorter than %d characters: no admin is bootstrapped",
            PASSWORD_MIN_LENGTH,
        )
        return None
    # Built without validation: the operator's address may be one the API
    # would refuse (e.g. admin@crm.local), and it must still be able to log in.
    data = UserCreate.model_construct(
        email=email,
        full_name="Administrator",
        role=Role.ADMIN,
        password=settings.admin_password,
        team_ids=[],
        is_active=True,
    )
    try:
        user = await create_user(db, data=data, actor=None)
    except Conflict:
        return None
    log.info("bootstrapped admin %s", email)
    return user
