"""HTTP routes of /notifications (admins: the outbound log; integrations: transactional sends)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_notifications.notifications import service
from crm_notifications.notifications.schemas import (
    NotificationCreate,
    NotificationDetail,
    NotificationRead,
)

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=NotificationDetail)
async def create_notification(
    data: NotificationCreate,
    _: AdminUser,
    db: DatabaseDep,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> NotificationDetail:
    return await service.create_notification(
        db=db,
        data=data,
        key=idempotency_key,
        price_per_segment=request.app.state.settings.sms_price_per_segment,
    )


@router.get("", response_model=Page[NotificationRead])
async def list_notifications(
    _: AdminUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    channel: Annotated[str | None, Query(max_length=10)] = None,
    source_type: Annotated[str | None, Query(max_length=40)] = None,
    contact_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[NotificationRead]:
    return await service.list_notifications(
        db=db,
        limit=limit,
        cursor=cursor,
        recipient=recipient,
        status=status,
        channel=channel,
        source_type=source_type,
        contact_id=contact_id,
    )


@router.get("/{notification_id}", response_model=NotificationDetail)
async def get_notification(
    notification_id: uuid.UUID, _: AdminUser, db: DatabaseDep
) -> NotificationDetail:
    return await service.get_notification(db=db, notification_id=str(notification_id))
