"""HTTP routes of the board: /pipelines/{id}/board and one stage's next page."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from crm_deals.board import service
from crm_deals.board.schemas import Board, BoardColumn
from crm_deals.board.service import BoardFilter
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import MAX_LIMIT
from crm_kernel.problems import BadRequest

router = APIRouter(prefix="/pipelines", tags=["board"])

PER_STAGE_DEFAULT = 20


def _filters(
    owner_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> BoardFilter:
    for name, value in (("created_from", created_from), ("created_to", created_to)):
        if value is not None and value.tzinfo is None:
            raise BadRequest(
                f"`{name}` needs a time zone (e.g. 2026-01-01T00:00:00Z).",
                errors=[{"field": name, "location": "query", "message": "time zone required"}],
            )
    return BoardFilter(
        owner_id=str(owner_id) if owner_id else None,
        team_id=str(team_id) if team_id else None,
        created_from=created_from,
        created_to=created_to,
    )


@router.get("/{pipeline_id}/board")
async def get_board(
    pipeline_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    per_stage: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PER_STAGE_DEFAULT,
    owner_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> Board:
    """Each stage with its first `per_stage` deals, count, totals and weighted totals.

    Only deals the caller may see are shown or counted.
    """
    return await service.board(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        filters=_filters(owner_id, team_id, created_from, created_to),
        per_stage=per_stage,
    )


@router.get("/{pipeline_id}/board/stages/{stage_id}")
async def get_board_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PER_STAGE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    owner_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> BoardColumn:
    """One column of the board, a page at a time (same filters as the board)."""
    return await service.board_stage(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        stage_id=str(stage_id),
        filters=_filters(owner_id, team_id, created_from, created_to),
        limit=limit,
        cursor=cursor,
    )
