"""HTTP routes of /me/notifications: a user's own in-app notices."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_notifications.notices import service
from crm_notifications.notices.schemas import NoticeRead, ReadAllResult

router = APIRouter(prefix="/me/notifications", tags=["in-app notices"])


@router.get("", response_model=Page[NoticeRead])
async def list_my_notices(
    user: CurrentUser,
    db: DatabaseDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Page[NoticeRead]:
    """The caller's notices, newest first; `unread=true` for the unread ones only."""
    return await service.list_notices(
        db=db, user_id=user.user_id, unread=unread, limit=limit, cursor=cursor
    )


@router.post("/read-all", response_model=ReadAllResult)
async def mark_all_my_notices_read(user: CurrentUser, db: DatabaseDep) -> ReadAllResult:
    return await service.mark_all_read(db=db, user_id=user.user_id)


@router.post("/{notice_id}/read", response_model=NoticeRead)
async def mark_my_notice_read(
    notice_id: uuid.UUID, user: CurrentUser, db: DatabaseDep
) -> NoticeRead:
    return await service.mark_read(db=db, user_id=user.user_id, notice_id=str(notice_id))
