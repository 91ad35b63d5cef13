"""Team use cases: each one transaction that also writes its event to the outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_gateway.orm import utcnow
from crm_gateway.teams.events import team_event
from crm_gateway.teams.models import Team
from crm_gateway.teams.schemas import TeamCreate, TeamUpdate
from crm_kernel.contracts.gateway import TeamCreated, TeamUpdated
from crm_kernel.db import Database
from crm_kernel.outbox import add_event
from crm_kernel.pagination import paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed
from crm_kernel.versioning import check_version

SORTABLE = {"name": Team.name, "created_at": Team.created_at}


def _duplicate_name() -> Conflict:
    return Conflict(
        "A team with this name already exists.",
        errors=[{"field": "name", "location": "body", "message": "already in use"}],
    )


async def _get(session: AsyncSession, team_id: str) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("No such team.")
    return team


async def _name_taken(session: AsyncSession, name: str, *, other_than: str | None = None) -> bool:
    query = select(Team.id).where(Team.name == name)
    if other_than is not None:
        query = query.where(Team.id != other_than)
    return await session.scalar(query) is not None


async def create_team(db: Database, *, data: TeamCreate, actor: str | None) -> Team:
    """Create a team and publish TeamCreated; 409 if the name is taken."""
    try:
        async with db.transaction() as session:
            if await _name_taken(session, data.name):
                raise _duplicate_name()
            now = utcnow()
            team = Team(name=data.name, created_at=now, updated_at=now)
            session.add(team)
            await session.flush()
            await add_event(session, team_event(TeamCreated, team), subject=team.id, actor=actor)
    except IntegrityError as exc:
        raise _duplicate_name() from exc
    return team


async def get_team(db: Database, *, team_id: str) -> Team:
    """One team, or 404."""
    async with db.session() as session:
        return await _get(session, team_id)


async def list_teams(
    db: Database, *, limit: int, cursor: str | None, sort: str | None
) -> tuple[list[Team], str | None]:
    """A page of teams."""
    keys = parse_sort(sort, SORTABLE, "name", Team.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, select(Team), keys, limit=limit, cursor=cursor)
    return [row[0] for row in rows], next_cursor


async def update_team(
    db: Database,
    *,
    team_id: str,
    data: TeamUpdate,
    expected_version: int | None,
    actor: str | None,
) -> Team:
    """Rename a team and publish TeamUpdated; 412 if the version is stale, 409 if the name is taken."""
    try:
        async with db.transaction() as session:
            team = await _get(session, team_id)
            check_version(team.version, expected_version, data.version)
            if data.name is not None and data.name != team.name:
                if await _name_taken(session, data.name, other_than=team.id):
                    raise _duplicate_name()
                team.name = data.name
            team.updated_at = utcnow()
            await session.flush()
            await add_event(session, team_event(TeamUpdated, team), subject=team.id, actor=actor)
    except StaleDataError as exc:
        raise PreconditionFailed("The team was changed by someone else; reload it.") from exc
    except IntegrityError as exc:
        raise _duplicate_name() from exc
    return team
