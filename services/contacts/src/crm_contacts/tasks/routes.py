"""HTTP routes of /tasks: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_contacts.tasks import service
from crm_contacts.tasks.schemas import TaskCreate, TaskRead, TaskStatus, TaskUpdate
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/tasks", tags=["tasks"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskRead)
async def create_task(
    data: TaskCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> TaskRead:
    """Put a task on a contact or a deal."""
    task = await service.create_task(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{request.url.path}/{task.id}"
    response.headers["ETag"] = etag(task.version)
    return task


@router.get("/{task_id}", response_model=TaskRead)
async def get_task(
    task_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> TaskRead:
    """One task; 404 if the caller may not see it."""
    task = await service.get_task(db=db, principal=principal, task_id=str(task_id))
    response.headers["ETag"] = etag(task.version)
    return task


@router.get("", response_model=Page[TaskRead])
async def list_tasks(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: Annotated[str | None, Query(max_length=200, description="e.g. due_at")] = None,
    status: TaskStatus | None = None,
    overdue: bool | None = None,
    assignee_id: uuid.UUID | None = None,
    contact_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
) -> Page[TaskRead]:
    """The tasks the caller may see, a page at a time; `overdue=true`: open and past due."""
    return await service.list_tasks(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        status=status,
        overdue=overdue,
        assignee_id=str(assignee_id) if assignee_id else None,
        contact_id=str(contact_id) if contact_id else None,
        deal_id=str(deal_id) if deal_id else None,
    )


@router.patch("/{task_id}", response_model=TaskRead)
async def update_task(
    task_id: uuid.UUID,
    data: TaskUpdate,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> TaskRead:
    """Change the fields sent; `status: done` completes; 412 if stale."""
    task = await service.update_task(
        db=db, principal=principal, task_id=str(task_id), data=data, expected_version=if_match
    )
    response.headers["ETag"] = etag(task.version)
    return task


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(
    task_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, if_match: IfMatch
) -> Response:
    """Remove a task (soft delete, audited)."""
    await service.delete_task(
        db=db, principal=principal, task_id=str(task_id), expected_version=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
