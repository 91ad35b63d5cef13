"""Team endpoints (admin only): create, list, read, rename."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from crm_gateway.teams import service
from crm_gateway.teams.schemas import TeamCreate, TeamRead, TeamUpdate
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.auth import AdminUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import etag, parse_if_match

router = APIRouter(prefix="/teams", tags=["teams"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_team(
    data: TeamCreate, admin: AdminUser, db: DatabaseDep, response: Response
) -> TeamRead:
    """Create a team."""
    team = await service.create_team(db, data=data, actor=admin.user_id)
    response.headers["Location"] = f"{API_PREFIX}/teams/{team.id}"
    response.headers["ETag"] = etag(team.version)
    return TeamRead.model_validate(team)


@router.get("")
async def list_teams(
    _admin: AdminUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
    sort: Annotated[str | None, Query(description="e.g. `name` or `-created_at`")] = None,
) -> Page[TeamRead]:
    """Teams, a page at a time."""
    teams, next_cursor = await service.list_teams(db, limit=limit, cursor=cursor, sort=sort)
    return Page(items=[TeamRead.model_validate(t) for t in teams], next_cursor=next_cursor)


@router.get("/{team_id}")
async def get_team(
    team_id: str, _admin: AdminUser, db: DatabaseDep, response: Response
) -> TeamRead:
    """One team; the ETag is its version."""
    team = await service.get_team(db, team_id=team_id)
    response.headers["ETag"] = etag(team.version)
    return TeamRead.model_validate(team)


@router.patch("/{team_id}")
async def update_team(
    team_id: str,
    data: TeamUpdate,
    admin: AdminUser,
    db: DatabaseDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> TeamRead:
    """Rename a team; 412 if If-Match is stale."""
    team = await service.update_team(
        db,
        team_id=team_id,
        data=data,
        expected_version=parse_if_match(if_match),
        actor=admin.user_id,
    )
    response.headers["ETag"] = etag(team.version)
    return TeamRead.model_validate(team)
