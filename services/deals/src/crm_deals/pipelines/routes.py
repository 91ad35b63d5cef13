"""HTTP routes of /pipelines and their stages: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_deals.common import PipelineManager
from crm_deals.pipelines import service
from crm_deals.pipelines.schemas import (
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageOrder,
    StageUpdate,
)
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


def _with_etag(response: Response, pipeline: PipelineRead) -> PipelineRead:
    response.headers["ETag"] = etag(pipeline.version)
    return pipeline


@router.get("")
async def list_pipelines(_: CurrentUser, db: DatabaseDep) -> list[PipelineRead]:
    """Every pipeline with its stages in order, the default first."""
    return await service.list_pipelines(db=db)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_pipeline(
    data: PipelineCreate,
    principal: PipelineManager,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> PipelineRead:
    pipeline = await service.create_pipeline(
        db=db, principal=principal, data=data, locale=request.app.state.settings.locale
    )
    response.headers["Location"] = f"{API_PREFIX}/pipelines/{pipeline.id}"
    return _with_etag(response, pipeline)


@router.get("/{pipeline_id}")
async def get_pipeline(
    pipeline_id: uuid.UUID, _: CurrentUser, db: DatabaseDep, response: Response
) -> PipelineRead:
    return _with_etag(response, await service.get_pipeline(db=db, pipeline_id=str(pipeline_id)))


@router.patch("/{pipeline_id}")
async def rename_pipeline(
    pipeline_id: uuid.UUID,
    data: PipelineUpdate,
    principal: PipelineManager,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> PipelineRead:
    pipeline = await service.rename_pipeline(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        data=data,
        expected_version=expected,
    )
    return _with_etag(response, pipeline)


@router.post("/{pipeline_id}/stages", status_code=status.HTTP_201_CREATED)
async def add_stage(
    pipeline_id: uuid.UUID,
    data: StageCreate,
    principal: PipelineManager,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> PipelineRead:
    """Add an open stage; answers the whole pipeline."""
    pipeline = await service.add_stage(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        data=data,
        expected_version=expected,
    )
    return _with_etag(response, pipeline)


@router.put("/{pipeline_id}/stages/order")
async def reorder_stages(
    pipeline_id: uuid.UUID,
    data: StageOrder,
    principal: PipelineManager,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> PipelineRead:
    pipeline = await service.reorder_stages(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        data=data,
        expected_version=expected,
    )
    return _with_etag(response, pipeline)


@router.patch("/{pipeline_id}/stages/{stage_id}")
async def update_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    data: StageUpdate,
    principal: PipelineManager,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> PipelineRead:
    """Rename a stage or change its probability."""
    pipeline = await service.update_stage(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        stage_id=str(stage_id),
        data=data,
        expected_version=expected,
    )
    return _with_etag(response, pipeline)


@router.delete("/{pipeline_id}/stages/{stage_id}")
async def delete_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    principal: PipelineManager,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
    target_stage_id: Annotated[uuid.UUID | None, Query()] = None,
) -> PipelineRead:
    """Delete an open stage; its deals move to `target_stage_id` (409 without one)."""
    pipeline = await service.delete_stage(
        db=db,
        principal=principal,
        pipeline_id=str(pipeline_id),
        stage_id=str(stage_id),
        target_stage_id=str(target_stage_id) if target_stage_id else None,
        expected_version=expected,
    )
    return _with_etag(response, pipeline)
