"""The user directory a service keeps from gateway events, and record visibility by owner."""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, insert, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.auth import Principal, Role
from crm_kernel.consumer import EventContext, Handlers
from crm_kernel.contracts.gateway import UserChanged, UserCreated, UserUpdated
from crm_kernel.db import SqlColumn, upsert_if_newer
from crm_kernel.tables import directory_team_members as members
from crm_kernel.tables import directory_users as users


async def apply_user(session: AsyncSession, user: UserChanged) -> None:
    """Store a user's newest state; an older event never overwrites a newer one."""
    row = {
        "id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "is_active": user.is_active,
        "version": user.version,
    }
    if not await upsert_if_newer(session, users, row, key=["id"], version="version"):
        return
    await session.execute(delete(members).where(members.c.user_id == user.id))
    if user.team_ids:
        await session.execute(
            insert(members), [{"team_id": t, "user_id": user.id} for t in set(user.team_ids)]
        )


def register(handlers: Handlers) -> None:
    """Keep this service's directory from the gateway's user events."""

    @handlers.on(UserCreated)
    async def on_user_created(event: UserCreated, ctx: EventContext) -> None:
        await apply_user(ctx.session, event)

    @handlers.on(UserUpdated)
    async def on_user_updated(event: UserUpdated, ctx: EventContext) -> None:
        await apply_user(ctx.session, event)


def owner_filter(principal: Principal, owner_column: SqlColumn) -> ColumnElement[bool]:
    """SQL condition on a record's owner: what this caller may see.

    Admins and marketers: everything. A head of sales: their own records and
    those of every member of their teams. Anyone else: only their own.
    """
    if principal.sees_every_owner():
        return true()
    if principal.role is Role.HEAD_OF_SALES:
        my_teams = select(members.c.team_id).where(members.c.user_id == principal.user_id)
        teammates = select(members.c.user_id).where(members.c.team_id.in_(my_teams))
        return (owner_column == principal.user_id) | owner_column.in_(teammates)
    return owner_column == principal.user_id


async def can_see_owner(session: AsyncSession, principal: Principal, owner_id: str) -> bool:
    """Whether a record owned by `owner_id` is visible to the caller."""
    if principal.sees_every_owner() or owner_id == principal.user_id:
        return True
    if principal.role is not Role.HEAD_OF_SALES:
        return False
    row = await session.execute(
        select(literal(1)).where(owner_filter(principal, literal(owner_id)))
    )
    return row.first() is not None
