"""The events pipelines publish, built from the stored rows."""

from __future__ import annotations

from collections.abc import Sequence

from crm_deals.common import decimal_str
from crm_deals.pipelines.models import Pipeline, Stage
from crm_kernel.contracts.deals import PipelineState, StageState


def pipeline_event(
    schema: type[PipelineState],
    pipeline: Pipeline,
    stages: Sequence[Stage],
    *,
    change: str,
    deleted_stage_id: str | None = None,
    target_stage_id: str | None = None,
) -> PipelineState:
    return schema(
        id=pipeline.id,
        name=pipeline.name,
        is_default=pipeline.is_default,
        stages=[
            StageState(
                id=s.id,
                name=s.name,
                position=s.position,
                probability=decimal_str(s.probability),
                kind=s.kind,
            )
            for s in stages
        ],
        version=pipeline.version,
        created_at=pipeline.created_at.isoformat(),
        updated_at=pipeline.updated_at.isoformat(),
        change=change,
        deleted_stage_id=deleted_stage_id,
        target_stage_id=target_stage_id,
    )
