"""Pipeline use cases: each one transaction, its event written to the outbox with the change."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_deals.common import decimal_str
from crm_deals.deals.events import deal_event
from crm_deals.deals.history import enter_stage
from crm_deals.deals.models import Deal
from crm_deals.pipelines.defaults import (
    DEFAULT_PIPELINE_ID,
    default_pipeline_name,
    default_stage_id,
    default_stages,
)
from crm_deals.pipelines.events import pipeline_event
from crm_deals.pipelines.models import Pipeline, Stage
from crm_deals.pipelines.schemas import (
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageIn,
    StageKind,
    StageOrder,
    StageRead,
    StageUpdate,
)
from crm_kernel.auth import Principal
from crm_kernel.contracts.deals import DealStageChanged, PipelineCreated, PipelineUpdated
from crm_kernel.db import Database, upsert_if_newer
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed, Unprocessable
from crm_kernel.versioning import check_version


def _field_error(field: str, message: str) -> list[dict[str, str]]:
    return [{"field": field, "location": "body", "message": message}]


def to_read(pipeline: Pipeline, stages: Sequence[Stage]) -> PipelineRead:
    return PipelineRead.model_validate(
        {
            "id": pipeline.id,
            "name": pipeline.name,
            "is_default": pipeline.is_default,
            "version": pipeline.version,
            "created_at": pipeline.created_at,
            "updated_at": pipeline.updated_at,
            "stages": [stage_read(s) for s in stages],
        }
    )


def stage_read(stage: Stage) -> StageRead:
    return StageRead.model_validate(
        {
            "id": stage.id,
            "name": stage.name,
            "position": stage.position,
            "probability": decimal_str(stage.probability),
            "kind": stage.kind,
        }
    )


async def live_stages(session: AsyncSession, pipeline_id: str) -> list[Stage]:
    """A pipeline's stages that are not deleted, in position order."""
    return list(
        (
            await session.scalars(
                select(Stage)
                .where(Stage.pipeline_id == pipeline_id, Stage.deleted_at.is_(None))
                .order_by(Stage.position, Stage.id)
            )
        ).all()
    )


async def get_pipeline_row(session: AsyncSession, pipeline_id: str) -> Pipeline:
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise NotFound(f"No pipeline {pipeline_id}.")
    return pipeline


def _check_stage_set(stages: Sequence[StageIn]) -> None:
    """Exactly one won and one lost stage (win and lose go there) and at least one open stage."""
    kinds = Counter(s.kind for s in stages)
    if kinds[StageKind.WON] != 1 or kinds[StageKind.LOST] != 1 or not kinds[StageKind.OPEN]:
        raise Unprocessable(
            "A pipeline needs exactly one won stage, one lost stage and at least one open stage.",
            errors=_field_error("stages", "exactly one won, one lost, at least one open"),
        )
    names = Counter(s.name.casefold() for s in stages)
    if any(n > 1 for n in names.values()):
        raise Unprocessable(
            "Stage names must be unique within a pipeline.",
            errors=_field_error("stages", "duplicate stage name"),
        )


def _new_stages(pipeline_id: str, stages: Sequence[StageIn], ids: Sequence[str]) -> list[Stage]:
    return [
        Stage(
            id=stage_id,
            pipeline_id=pipeline_id,
            name=s.name,
            position=position,
            probability=s.probability,
            kind=s.kind.value,
            deleted_at=None,
        )
        for position, (s, stage_id) in enumerate(zip(stages, ids, strict=True))
    ]


async def ensure_default_pipeline(db: Database, *, locale: str) -> bool:
    """Create the default pipeline unless it exists; returns whether this call created it.

    Idempotent and safe with several replicas starting at once: the pipeline's
    id is fixed, the insert ignores a duplicate, and only the replica whose
    insert took effect adds the stages and the event.
    """
    now = datetime.now(UTC)
    row = {
        "id": DEFAULT_PIPELINE_ID,
        "name": default_pipeline_name(locale),
        "is_default": True,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    async with db.transaction() as session:
        if await session.get(Pipeline, DEFAULT_PIPELINE_ID) is not None:
            return False
        # Writes only if no row has the id (an equal version is not newer): on
        # PostgreSQL a concurrent insert waits for the other and finds it.
        table = cast(Table, Pipeline.__table__)
        if not await upsert_if_newer(session, table, row, key=["id"], version="version"):
            return False
        pipeline = await get_pipeline_row(session, DEFAULT_PIPELINE_ID)
        specs = default_stages(locale)
        stages = _new_stages(
            DEFAULT_PIPELINE_ID, specs, [default_stage_id(i) for i in range(len(specs))]
        )
        session.add_all(stages)
        await session.flush()
        await add_event(
            session,
            pipeline_event(PipelineCreated, pipeline, stages, change="created"),
            subject=pipeline.id,
        )
    return True


async def create_pipeline(
    *, db: Database, principal: Principal, data: PipelineCreate, locale: str
) -> PipelineRead:
    """A new pipeline with its stages in the given order."""
    specs = data.stages if data.stages is not None else default_stages(locale)
    _check_stage_set(specs)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        pipeline = Pipeline(
            id=str(new_id()),
            name=data.name,
            is_default=False,
            created_at=now,
            updated_at=now,
        )
        session.add(pipeline)
        await session.flush()
        stages = _new_stages(pipeline.id, specs, [str(new_id()) for _ in specs])
        session.add_all(stages)
        await session.flush()
        await add_event(
            session,
            pipeline_event(PipelineCreated, pipeline, stages, change="created"),
            subject=pipeline.id,
            actor=principal.user_id,
        )
        return to_read(pipeline, stages)


async def get_pipeline(*, db: Database, pipeline_id: str) -> PipelineRead:
    async with db.session() as session:
        pipeline = await get_pipeline_row(session, pipeline_id)
        return to_read(pipeline, await live_stages(session, pipeline_id))


async def list_pipelines(*, db: Database) -> list[PipelineRead]:
    """Every pipeline, the default first (there are few: no paging)."""
    async with db.session() as session:
        pipelines = (
            await session.scalars(
                select(Pipeline).order_by(Pipeline.is_default.desc(), Pipeline.created_at)
            )
        ).all()
        stages = (
            await session.scalars(
                select(Stage).where(Stage.deleted_at.is_(None)).order_by(Stage.position, Stage.id)
            )
        ).all()
    by_pipeline: dict[str, list[Stage]] = {}
    for stage in stages:
        by_pipeline.setdefault(stage.pipeline_id, []).append(stage)
    return [to_read(p, by_pipeline.get(p.id, [])) for p in pipelines]


@asynccontextmanager
async def _editing(
    db: Database, pipeline_id: str, expected_version: int | None
) -> AsyncIterator[tuple[AsyncSession, Pipeline, list[Stage]]]:
    """One pipeline edit: the pipeline (version checked) and its stages, in one transaction.

    The pipeline row is always rewritten (its version bumped in the WHERE
    clause), so two concurrent stage edits cannot both commit.
    """
    try:
        async with db.transaction() as session:
            pipeline = await get_pipeline_row(session, pipeline_id)
            check_version(pipeline.version, expected_version)
            stages = await live_stages(session, pipeline_id)
            yield session, pipeline, stages
    except StaleDataError as exc:
        # Another edit committed between our read and our write.
        if expected_version is not None:
            raise PreconditionFailed("The pipeline was changed meanwhile; reload it.") from exc
        raise Conflict("The pipeline was changed by someone else meanwhile; try again.") from exc


async def _publish_update(
    session: AsyncSession,
    pipeline: Pipeline,
    principal: Principal,
    *,
    change: str,
    deleted_stage_id: str | None = None,
    target_stage_id: str | None = None,
) -> PipelineRead:
    pipeline.updated_at = datetime.now(UTC)
    await session.flush()
    stages = await live_stages(session, pipeline.id)
    await add_event(
        session,
        pipeline_event(
            PipelineUpdated,
            pipeline,
            stages,
            change=change,
            deleted_stage_id=deleted_stage_id,
            target_stage_id=target_stage_id,
        ),
        subject=pipeline.id,
        actor=principal.user_id,
    )
    return to_read(pipeline, stages)


async def rename_pipeline(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    data: PipelineUpdate,
    expected_version: int | None,
) -> PipelineRead:
    async with _editing(db, pipeline_id, expected_version) as (session, pipeline, _):
        pipeline.name = data.name
        return await _publish_update(session, pipeline, principal, change="renamed")


def _stage_in(stages: Sequence[Stage], stage_id: str) -> Stage:
    for stage in stages:
        if stage.id == stage_id:
            return stage
    raise NotFound(f"No stage {stage_id} in this pipeline.")


def _renumber(stages: Sequence[Stage]) -> None:
    for position, stage in enumerate(stages):
        stage.position = position


def _check_unique_name(stages: Sequence[Stage], name: str, except_id: str | None = None) -> None:
    if any(s.name.casefold() == name.casefold() and s.id != except_id for s in stages):
        raise Conflict(
            f"The pipeline already has a stage named {name!r}.",
            errors=_field_error("name", "already used in this pipeline"),
        )


async def add_stage(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    data: StageCreate,
    expected_version: int | None,
) -> PipelineRead:
    """Insert an open stage at `position` (default: after the last open stage)."""
    if data.kind is not StageKind.OPEN:
        raise Unprocessable(
            "A pipeline has exactly one won and one lost stage; new stages are open.",
            errors=_field_error("kind", "only open stages can be added"),
        )
    async with _editing(db, pipeline_id, expected_version) as (session, pipeline, stages):
        _check_unique_name(stages, data.name)
        if data.position is None:
            open_positions = [i for i, s in enumerate(stages) if s.kind == StageKind.OPEN]
            position = open_positions[-1] + 1 if open_positions else 0
        else:
            position = min(data.position, len(stages))
        stage = Stage(
            id=str(new_id()),
            pipeline_id=pipeline.id,
            name=data.name,
            position=position,
            probability=data.probability,
            kind=StageKind.OPEN.value,
            deleted_at=None,
        )
        session.add(stage)
        ordered = [*stages]
        ordered.insert(position, stage)
        _renumber(ordered)
        return await _publish_update(session, pipeline, principal, change="stage_added")


async def update_stage(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    stage_id: str,
    data: StageUpdate,
    expected_version: int | None,
) -> PipelineRead:
    """Rename a stage or change its probability (deals already in it keep their history)."""
    async with _editing(db, pipeline_id, expected_version) as (session, pipeline, stages):
        stage = _stage_in(stages, stage_id)
        if data.name is not None:
            _check_unique_name(stages, data.name, except_id=stage.id)
            stage.name = data.name
        if data.probability is not None:
            stage.probability = data.probability
        return await _publish_update(session, pipeline, principal, change="stage_updated")


async def reorder_stages(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    data: StageOrder,
    expected_version: int | None,
) -> PipelineRead:
    """Put the stages in the given order; every stage must be named exactly once."""
    wanted = [str(i) for i in data.stage_ids]
    async with _editing(db, pipeline_id, expected_version) as (session, pipeline, stages):
        if sorted(wanted) != sorted(s.id for s in stages):
            raise Unprocessable(
                "Name every stage of the pipeline exactly once.",
                errors=_field_error("stage_ids", "must be a permutation of the pipeline's stages"),
            )
        by_id = {s.id: s for s in stages}
        _renumber([by_id[i] for i in wanted])
        return await _publish_update(session, pipeline, principal, change="stages_reordered")


async def delete_stage(
    *,
    db: Database,
    principal: Principal,
    pipeline_id: str,
    stage_id: str,
    target_stage_id: str | None,
    expected_version: int | None,
) -> PipelineRead:
    """Delete an open stage; the deals in it move to `target_stage_id` (required if any).

    Each moved deal gets a stage-history entry and a stage_changed event, as
    if moved by the caller, so time-in-stage stays exact.
    """
    async with _editing(db, pipeline_id, expected_version) as (session, pipeline, stages):
        stage = _stage_in(stages, stage_id)
        if stage.kind != StageKind.OPEN:
            raise Conflict("The won and lost stages cannot be deleted.")
        if sum(1 for s in stages if s.kind == StageKind.OPEN) == 1:
            raise Conflict("A pipeline keeps at least one open stage.")
        now = datetime.now(UTC)
        # Marked deleted before its deals are read: the row lock (PostgreSQL) or
        # the write lock (SQLite) makes a concurrent move into the stage either
        # finish first (and be moved below) or find the stage gone.
        stage.deleted_at = now
        await session.flush()
        deals = list(
            (
                await session.scalars(
                    select(Deal).where(Deal.stage_id == stage.id).order_by(Deal.id)
                )
            ).all()
        )
        target: Stage | None = None
        if target_stage_id is not None:
            target = next((s for s in stages if s.id == target_stage_id), None)
            if target is None or target.id == stage.id or target.kind != StageKind.OPEN:
                raise Unprocessable(
                    "The target must be another open stage of the same pipeline.",
                    errors=[
                        {
                            "field": "target_stage_id",
                            "location": "query",
                            "message": "not another open stage of this pipeline",
                        }
                    ],
                )
        if deals and target is None:
            raise Conflict(
                f"The stage holds {len(deals)} deal(s); name a target_stage_id to move them to.",
                errors=[
                    {
                        "field": "target_stage_id",
                        "location": "query",
                        "message": "required: the stage holds deals",
                    }
                ],
                deals=len(deals),
            )
        _renumber([s for s in stages if s.id != stage.id])
        if target is not None:
            for deal in deals:
                transition = await enter_stage(
                    session,
                    deal,
                    stages=stages,
                    to=target,
                    reason="stage_deleted",
                    actor=principal.user_id,
                    now=now,
                )
                deal.updated_at = now
                await session.flush()
                await add_event(
                    session,
                    deal_event(DealStageChanged, deal, transition=transition),
                    subject=deal.id,
                    actor=principal.user_id,
                )
        return await _publish_update(
            session,
            pipeline,
            principal,
            change="stage_deleted",
            deleted_stage_id=stage.id,
            target_stage_id=target.id if target else None,
        )
