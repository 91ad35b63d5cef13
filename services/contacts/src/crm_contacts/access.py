"""Who may change what: the write-side rules on top of the kernel's visibility filter.

Reading is `directory.owner_filter` (admins and marketers see every owner, a
head of sales their teams', a rep their own). Writing is narrower: a marketer
reads the whole base for marketing but changes only records they own.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.auth import Principal, Role
from crm_kernel.directory import can_see_owner
from crm_kernel.problems import Forbidden

TRASH_ROLES = (Role.ADMIN, Role.HEAD_OF_SALES)


def ensure_may_write(principal: Principal, owner_id: str) -> None:
    """403 for a marketer changing someone else's record (they may see it, so not 404)."""
    if principal.role is Role.MARKETER and owner_id != principal.user_id:
        raise Forbidden("Marketers may change only records they own.")


def ensure_trash_role(principal: Principal) -> None:
    """Only admins and heads of sales look into the trash and restore from it."""
    if principal.role not in TRASH_ROLES:
        raise Forbidden("Only admins and heads of sales may use the trash.")


async def may_assign(session: AsyncSession, principal: Principal, owner_id: str) -> bool:
    """Admins assign anyone; a head of sales themselves or a team member; others only themselves."""
    if owner_id == principal.user_id or principal.role is Role.ADMIN:
        return True
    if principal.role is Role.HEAD_OF_SALES:
        return await can_see_owner(session, principal, owner_id)
    return False


def ensure_may_reassign(principal: Principal) -> None:
    """Changing owners is for admins and heads of sales (within their teams)."""
    if principal.role not in (Role.ADMIN, Role.HEAD_OF_SALES):
        raise Forbidden("Only admins and heads of sales may change owners.")


def owner_not_assignable() -> Forbidden:
    return Forbidden(
        "You may not make this user the owner.",
        errors=[{"field": "owner_id", "location": "body", "message": "not assignable by you"}],
    )
