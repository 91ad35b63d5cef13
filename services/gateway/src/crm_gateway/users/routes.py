"""User endpoints (admin only): create, list, read, change."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from crm_gateway.state import GatewayDep
from crm_gateway.users import service
from crm_gateway.users.offboarding import offboard_user
from crm_gateway.users.schemas import (
    OffboardRead,
    OffboardRequest,
    UserCreate,
    UserRead,
    UserUpdate,
)
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.auth import AdminUser, CurrentUser, Role
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import etag, parse_if_match

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(
    data: UserCreate, admin: AdminUser, db: DatabaseDep, response: Response
) -> UserRead:
    """Create a user with a role, teams and an initial password."""
    user = await service.create_user(db, data=data, actor=admin.user_id)
    response.headers["Location"] = f"{API_PREFIX}/users/{user.id}"
    response.headers["ETag"] = etag(user.version)
    return UserRead.model_validate(user)


@router.get("")
async def list_users(
    _admin: AdminUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
    sort: Annotated[str | None, Query(description="e.g. `email` or `-created_at`")] = None,
    role: Role | None = None,
    team_id: str | None = None,
    is_active: bool | None = None,
) -> Page[UserRead]:
    """Users, a page at a time; filter by role, team or activity."""
    users, next_cursor = await service.list_users(
        db,
        limit=limit,
        cursor=cursor,
        sort=sort,
        role=role,
        team_id=team_id,
        is_active=is_active,
    )
    return Page(items=[UserRead.model_validate(u) for u in users], next_cursor=next_cursor)


@router.get("/{user_id}")
async def get_user(
    user_id: str, _admin: AdminUser, db: DatabaseDep, response: Response
) -> UserRead:
    """One user; the ETag is its version, for If-Match on a later change."""
    user = await service.get_user(db, user_id=user_id)
    response.headers["ETag"] = etag(user.version)
    return UserRead.model_validate(user)


@router.patch("/{user_id}")
async def update_user(
    user_id: str,
    data: UserUpdate,
    admin: AdminUser,
    db: DatabaseDep,
    gateway: GatewayDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> UserRead:
    """Change name, role, teams, activity or password; 412 if If-Match is stale."""
    user = await service.update_user(
        db,
        user_id=user_id,
        data=data,
        expected_version=parse_if_match(if_match),
        actor=admin.user_id,
    )
    # This replica stops trusting the user's sessions at once (deactivated,
    # new password, new role); the others within the guard's TTL.
    gateway.guard.forget_user(user.id)
    response.headers["ETag"] = etag(user.version)
    return UserRead.model_validate(user)


@router.post("/{user_id}/offboard")
async def offboard(
    user_id: str,
    data: OffboardRequest,
    caller: CurrentUser,
    db: DatabaseDep,
    gateway: GatewayDep,
    response: Response,
) -> OffboardRead:
    """Deactivate a leaving user, end their sessions and API keys, hand their records over.

    Admins, or the head of sales of the user's team; the contacts and deals
    services reassign the records on `crm.gateway.user.offboarded`.
    """
    done = await offboard_user(db, user_id=user_id, successor_id=data.successor_id, actor=caller)
    gateway.guard.forget_user(user_id)
    for key_id in done.revoked_api_key_ids:
        gateway.api_keys.forget(key_id)
    response.headers["ETag"] = etag(done.user.version)
    return OffboardRead(
        user=UserRead.model_validate(done.user),
        successor_id=done.successor_id,
        revoked_api_keys=len(done.revoked_api_key_ids),
    )
