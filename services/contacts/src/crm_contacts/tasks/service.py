"""Task use cases: visible to the assignee (and whoever sees the assignee's records) or via the contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts import access
from crm_contacts.audit import service as audit
from crm_contacts.audit.service import audit_change
from crm_contacts.common import stale, utcnow
from crm_contacts.contacts.models import Contact
from crm_contacts.tasks.models import Task
from crm_contacts.tasks.schemas import (
    MAX_REMIND_MINUTES,
    TaskCreate,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)
from crm_kernel.auth import Principal, Role
from crm_kernel.consumer import PoisonMessage
from crm_kernel.contracts.contacts import (
    CreateTask,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskState,
    TaskUpdated,
)
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Forbidden, NotFound, Unprocessable
from crm_kernel.versioning import check_version

RECORD_TYPE = "task"
SORTABLE = {
    "due_at": Task.due_at,
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
}


def to_read(task: Task) -> TaskRead:
    return TaskRead.model_validate(task)


def _visible(principal: Principal) -> Select[Any]:
    """Live tasks assigned to someone whose records the caller sees, or on a contact they see."""
    contact_visible = and_(
        Contact.id.is_not(None),
        Contact.deleted_at.is_(None),
        owner_filter(principal, Contact.owner_id),
    )
    return (
        select(Task)
        .outerjoin(Contact, Contact.id == Task.contact_id)
        .where(
            Task.deleted_at.is_(None),
            or_(owner_filter(principal, Task.assignee_id), contact_visible),
        )
    )


async def publish(
    session: AsyncSession, kind: type[TaskState], task: Task, *, actor: str | None
) -> None:
    """Store an event with the task's whole state (the scheduler publishes through it too)."""
    state = to_read(task).model_dump(mode="json")
    state["deleted_at"] = task.deleted_at.isoformat() if task.deleted_at else None
    await add_event(session, kind.model_validate(state), subject=task.id, actor=actor)


def _remind_at(due_at: datetime, remind_before_minutes: int | None) -> datetime | None:
    if remind_before_minutes is None:
        return None
    return due_at - timedelta(minutes=remind_before_minutes)


async def _ensure_may_assign(session: AsyncSession, principal: Principal, assignee: str) -> None:
    if not await access.may_assign(session, principal, assignee):
        raise Forbidden(
            "You may not assign this user.",
            errors=[
                {"field": "assignee_id", "location": "body", "message": "not assignable by you"}
            ],
        )


def _needs_contact_or_deal(field: str) -> Unprocessable:
    return Unprocessable(
        "A task is on a contact or a deal.",
        errors=[{"field": field, "location": "body", "message": "give contact_id or deal_id"}],
    )


async def _contact_for_writing(
    session: AsyncSession, principal: Principal, contact_id: str
) -> Contact:
    """The live, visible contact a task is put on; 422 naming `contact_id` otherwise."""
    contact = (
        await session.execute(
            select(Contact).where(
                Contact.id == contact_id,
                Contact.deleted_at.is_(None),
                owner_filter(principal, Contact.owner_id),
            )
        )
    ).scalar_one_or_none()
    if contact is None:
        raise Unprocessable(
            f"No contact {contact_id} that you may see.",
            errors=[{"field": "contact_id", "location": "body", "message": "no such contact"}],
        )
    access.ensure_may_write(principal, contact.owner_id)
    return contact


async def _load(
    session: AsyncSession, principal: Principal, task_id: str
) -> tuple[Task, str | None]:
    """A visible task and its contact's owner (None without a live contact); 404 otherwise."""
    row = (
        await session.execute(
            _visible(principal).add_columns(Contact.owner_id).where(Task.id == task_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No task {task_id}.")
    return row[0], row[1]


def _ensure_may_write(principal: Principal, task: Task, contact_owner: str | None) -> None:
    """A marketer sees every task but changes only their own or those on contacts they own."""
    if principal.role is Role.MARKETER and principal.user_id not in (
        task.assignee_id,
        contact_owner,
    ):
        raise Forbidden("Marketers may change only their own tasks.")


async def create_task(*, db: Database, principal: Principal, data: TaskCreate) -> TaskRead:
    """Put a task on a contact the caller may change, or on a deal."""
    if data.contact_id is None and data.deal_id is None:
        raise _needs_contact_or_deal("contact_id")
    now = utcnow()
    assignee = str(data.assignee_id) if data.assignee_id else principal.user_id
    async with db.transaction() as session:
        if data.contact_id is not None:
            await _contact_for_writing(session, principal, str(data.contact_id))
        await _ensure_may_assign(session, principal, assignee)
        task = Task(
            id=str(new_id()),
            title=data.title,
            due_at=data.due_at,
            assignee_id=assignee,
            contact_id=str(data.contact_id) if data.contact_id else None,
            deal_id=str(data.deal_id) if data.deal_id else None,
            status=TaskStatus.OPEN,
            remind_before_minutes=data.remind_before_minutes,
            remind_at=_remind_at(data.due_at, data.remind_before_minutes),
            created_at=now,
            updated_at=now,
        )
        session.add(task)
        await session.flush()
        read = to_read(task)
        audit_change(session, principal, RECORD_TYPE, "create", None, read)
        await publish(session, TaskCreated, task, actor=principal.user_id)
    return read


async def get_task(*, db: Database, principal: Principal, task_id: str) -> TaskRead:
    """One task, or 404 when the caller may not see it."""
    async with db.session() as session:
        task, _owner = await _load(session, principal, task_id)
        return to_read(task)


async def list_tasks(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    status: str | None = None,
    overdue: bool | None = None,
    assignee_id: str | None = None,
    contact_id: str | None = None,
    deal_id: str | None = None,
) -> Page[TaskRead]:
    """The tasks the caller may see, soonest due first unless sorted otherwise."""
    query = _visible(principal)
    now = utcnow()
    if overdue is True:
        query = query.where(Task.status == TaskStatus.OPEN, Task.due_at < now)
    elif overdue is False:
        query = query.where(or_(Task.status != TaskStatus.OPEN, Task.due_at >= now))
    if status:
        query = query.where(Task.status == status)
    if assignee_id:
        query = query.where(Task.assignee_id == assignee_id)
    if contact_id:
        query = query.where(Task.contact_id == contact_id)
    if deal_id:
        query = query.where(Task.deal_id == deal_id)
    keys = parse_sort(sort, SORTABLE, "due_at", Task.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[TaskRead](items=[to_read(row[0]) for row in rows], next_cursor=next_cursor)


async def update_task(
    *,
    db: Database,
    principal: Principal,
    task_id: str,
    data: TaskUpdate,
    expected_version: int | None,
) -> TaskRead:
    """Change, complete or reopen a task; 412 if the version is stale."""
    sent = data.model_fields_set
    try:
        async with db.transaction() as session:
            task, contact_owner = await _load(session, principal, task_id)
            _ensure_may_write(principal, task, contact_owner)
            check_version(task.version, expected_version, data.version)
            before = to_read(task)
            kind: type[TaskState] = TaskUpdated
            if "title" in sent and data.title is not None:
                task.title = data.title
            if "deal_id" in sent:
                task.deal_id = str(data.deal_id) if data.deal_id else None
                if task.deal_id is None and task.contact_id is None:
                    raise _needs_contact_or_deal("deal_id")
            if "assignee_id" in sent and str(data.assignee_id) != task.assignee_id:
                await _ensure_may_assign(session, principal, str(data.assignee_id))
                task.assignee_id = str(data.assignee_id)
            if "due_at" in sent and data.due_at is not None and data.due_at != task.due_at:
                # A new due time earns its own reminder and overdue notice.
                task.due_at = data.due_at
                task.reminded_at = task.overdue_notified_at = None
                # Written even if already None: a scheduler may claim in between.
                flag_modified(task, "reminded_at")
                flag_modified(task, "overdue_notified_at")
            if "remind_before_minutes" in sent:
                if data.remind_before_minutes != task.remind_before_minutes:
                    task.reminded_at = None
                    flag_modified(task, "reminded_at")
                task.remind_before_minutes = data.remind_before_minutes
            task.remind_at = _remind_at(task.due_at, task.remind_before_minutes)
            if "status" in sent and data.status is not None and data.status != task.status:
                task.status = data.status
                if data.status is TaskStatus.DONE:
                    task.completed_at = utcnow()
                    kind = TaskCompleted
                else:
                    task.completed_at = None
            task.updated_at = utcnow()
            await session.flush()
            read = to_read(task)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
            await publish(session, kind, task, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("task") from exc
    return read


async def delete_task(
    *, db: Database, principal: Principal, task_id: str, expected_version: int | None
) -> None:
    """Remove a task (soft: the row and its audit trail stay; no more notices)."""
    try:
        async with db.transaction() as session:
            task, contact_owner = await _load(session, principal, task_id)
            _ensure_may_write(principal, task, contact_owner)
            check_version(task.version, expected_version)
            before = to_read(task)
            task.deleted_at = task.updated_at = utcnow()
            await session.flush()
            audit_change(session, principal, RECORD_TYPE, "delete", before, to_read(task))
            await publish(session, TaskDeleted, task, actor=principal.user_id)
    except StaleDataError as exc:
        raise stale("task") from exc


def _command_due_at(command: CreateTask) -> datetime:
    try:
        due_at = datetime.fromisoformat(command.due_at)
    except ValueError as exc:
        raise PoisonMessage(f"task.create {command.key}: due_at is not ISO 8601") from exc
    return due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)


async def create_task_from_command(
    session: AsyncSession, command: CreateTask, *, actor: str | None
) -> None:
    """Create the task a `crm.contacts.task.create` command asks for, once per `key`.

    A merged contact's task goes on its survivor; an unknown or erased contact
    leaves a deal task (or, without a deal, nothing to put the task on: dead letter).
    """
    existing = await session.scalar(select(Task.id).where(Task.create_key == command.key))
    if existing is not None:
        return
    remind = command.remind_before_minutes
    if remind is not None and not 0 <= remind <= MAX_REMIND_MINUTES:
        raise PoisonMessage(f"task.create {command.key}: remind_before_minutes out of range")
    contact_id = None
    if command.contact_id:
        contact = await session.get(Contact, command.contact_id)
        if contact is not None and contact.merged_into:
            contact = await session.get(Contact, contact.merged_into)
        contact_id = contact.id if contact is not None and not contact.erased_at else None
    if contact_id is None and not command.deal_id:
        raise PoisonMessage(f"task.create {command.key}: no contact or deal to put it on")
    due_at = _command_due_at(command)
    now = utcnow()
    task = Task(
        id=str(new_id()),
        title=command.title.strip()[:500] or "Task",
        due_at=due_at,
        assignee_id=command.assignee_id,
        contact_id=contact_id,
        deal_id=command.deal_id,
        status=TaskStatus.OPEN,
        remind_before_minutes=remind,
        remind_at=_remind_at(due_at, remind),
        create_key=command.key,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    await session.flush()
    audit.record(
        session,
        actor_id=actor,
        action="create",
        record_type=RECORD_TYPE,
        record_id=task.id,
        before=None,
        after=to_read(task),
    )
    await publish(session, TaskCreated, task, actor=actor)
