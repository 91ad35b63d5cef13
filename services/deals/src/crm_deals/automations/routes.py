"""HTTP routes of /automations (admins and heads of sales): parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from crm_deals.automations import service
from crm_deals.automations.schemas import (
    AutomationCreate,
    AutomationRead,
    AutomationRunRead,
    AutomationUpdate,
)
from crm_deals.common import PipelineManager
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/automations", tags=["automations"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.get("")
async def list_automations(
    _: PipelineManager,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    pipeline_id: uuid.UUID | None = None,
    stage_id: uuid.UUID | None = None,
) -> Page[AutomationRead]:
    """Every rule, oldest first, optionally of one pipeline or stage."""
    return await service.list_automations(
        db=db,
        limit=limit,
        cursor=cursor,
        pipeline_id=str(pipeline_id) if pipeline_id else None,
        stage_id=str(stage_id) if stage_id else None,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_automation(
    data: AutomationCreate, principal: PipelineManager, db: DatabaseDep, response: Response
) -> AutomationRead:
    rule = await service.create_automation(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{API_PREFIX}/automations/{rule.id}"
    response.headers["ETag"] = etag(rule.version)
    return rule


@router.get("/{automation_id}")
async def get_automation(
    automation_id: uuid.UUID, _: PipelineManager, db: DatabaseDep, response: Response
) -> AutomationRead:
    rule = await service.get_automation(db=db, automation_id=str(automation_id))
    response.headers["ETag"] = etag(rule.version)
    return rule


@router.patch("/{automation_id}")
async def update_automation(
    automation_id: uuid.UUID,
    data: AutomationUpdate,
    _: PipelineManager,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> AutomationRead:
    rule = await service.update_automation(
        db=db, automation_id=str(automation_id), data=data, expected_version=expected
    )
    response.headers["ETag"] = etag(rule.version)
    return rule


@router.delete("/{automation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_automation(automation_id: uuid.UUID, _: PipelineManager, db: DatabaseDep) -> None:
    await service.delete_automation(db=db, automation_id=str(automation_id))


@router.get("/{automation_id}/runs")
async def list_runs(
    automation_id: uuid.UUID,
    _: PipelineManager,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AutomationRunRead]:
    """What the rule did for each stay, newest first (skips say why)."""
    return await service.list_runs(
        db=db, automation_id=str(automation_id), limit=limit, cursor=cursor
    )
