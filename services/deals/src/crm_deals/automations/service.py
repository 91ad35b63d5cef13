"""Automation rule use cases: create, list, change, delete (admins and heads of sales)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import delete, select
from sqlalchemy.orm.exc import StaleDataError

from crm_deals.automations.models import Automation, AutomationRun
from crm_deals.automations.schemas import (
    Action,
    AutomationCreate,
    AutomationRead,
    AutomationRunRead,
    AutomationUpdate,
)
from crm_deals.automations.templates import template_error
from crm_deals.pipelines.models import Stage
from crm_deals.pipelines.schemas import StageKind
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed, Unprocessable
from crm_kernel.versioning import check_version

_ACTION: TypeAdapter[Action] = TypeAdapter(Action)
_TEXT_FIELDS = ("title", "subject", "body")


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"{field}: {message}", errors=[{"field": field, "location": "body", "message": message}]
    )


def to_read(rule: Automation) -> AutomationRead:
    return AutomationRead.model_validate(
        {
            "id": rule.id,
            "name": rule.name,
            "pipeline_id": rule.pipeline_id,
            "stage_id": rule.stage_id,
            "action": {"type": rule.action, **rule.params},
            "active": rule.active,
            "created_by": rule.created_by,
            "version": rule.version,
            "created_at": rule.created_at,
            "updated_at": rule.updated_at,
        }
    )


def _check_action(action: Action, stage: Stage) -> dict[str, Any]:
    """The action's parameters as stored; 422 for a broken template or a stalled rule on a closed stage."""
    params = action.model_dump(mode="json", exclude={"type"})
    for name in _TEXT_FIELDS:
        text = params.get(name)
        if isinstance(text, str) and (error := template_error(text)):
            raise _invalid(f"action.{name}", f"not a valid template ({error})")
    if action.type == "stalled" and stage.kind != StageKind.OPEN:
        raise _invalid("stage_id", "a closed deal cannot stall: choose an open stage")
    return params


async def create_automation(
    *, db: Database, principal: Principal, data: AutomationCreate
) -> AutomationRead:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        stage = await session.get(Stage, str(data.stage_id))
        if (
            stage is None
            or stage.deleted_at is not None
            or stage.pipeline_id != str(data.pipeline_id)
        ):
            raise _invalid("stage_id", "not a stage of the pipeline")
        rule = Automation(
            id=str(new_id()),
            name=data.name,
            pipeline_id=str(data.pipeline_id),
            stage_id=stage.id,
            action=data.action.type,
            params=_check_action(data.action, stage),
            active=data.active,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(rule)
        await session.flush()
        return to_read(rule)


async def get_automation(*, db: Database, automation_id: str) -> AutomationRead:
    async with db.session() as session:
        rule = await session.get(Automation, automation_id)
    if rule is None:
        raise NotFound(f"No automation {automation_id}.")
    return to_read(rule)


async def list_automations(
    *,
    db: Database,
    limit: int,
    cursor: str | None,
    pipeline_id: str | None,
    stage_id: str | None,
) -> Page[AutomationRead]:
    query = select(Automation)
    if pipeline_id:
        query = query.where(Automation.pipeline_id == pipeline_id)
    if stage_id:
        query = query.where(Automation.stage_id == stage_id)
    keys = parse_sort(None, {"created_at": Automation.created_at}, "created_at", Automation.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[AutomationRead](items=[to_read(r[0]) for r in rows], next_cursor=next_cursor)


async def update_automation(
    *, db: Database, automation_id: str, data: AutomationUpdate, expected_version: int | None
) -> AutomationRead:
    try:
        async with db.transaction() as session:
            rule = await session.get(Automation, automation_id)
            if rule is None:
                raise NotFound(f"No automation {automation_id}.")
            check_version(rule.version, expected_version)
            if data.name is not None:
                rule.name = data.name
            if data.active is not None:
                rule.active = data.active
            if data.action is not None:
                stage = await session.get(Stage, rule.stage_id)
                assert stage is not None  # stages are only soft-deleted
                rule.params = _check_action(data.action, stage)
                rule.action = data.action.type
            rule.updated_at = datetime.now(UTC)
            await session.flush()
            return to_read(rule)
    except StaleDataError as exc:
        if expected_version is not None:
            raise PreconditionFailed("The automation was changed meanwhile; reload it.") from exc
        raise Conflict("The automation was changed meanwhile; try again.") from exc


async def delete_automation(*, db: Database, automation_id: str) -> None:
    """Remove a rule (its past runs stay, for the record)."""
    async with db.transaction() as session:
        deleted = await session.execute(delete(Automation).where(Automation.id == automation_id))
        if not deleted.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"No automation {automation_id}.")


async def list_runs(
    *, db: Database, automation_id: str, limit: int, cursor: str | None
) -> Page[AutomationRunRead]:
    """What a rule did, newest first, with the reason of every skip."""
    keys = parse_sort(None, {"at": AutomationRun.at}, "-at", AutomationRun.stay_id)
    query = select(AutomationRun).where(AutomationRun.automation_id == automation_id)
    async with db.session() as session:
        if await session.get(Automation, automation_id) is None:
            raise NotFound(f"No automation {automation_id}.")
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[AutomationRunRead](
        items=[AutomationRunRead.model_validate(r[0], from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )
