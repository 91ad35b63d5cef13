"""HTTP routes of /webhooks (admins): subscriptions, their delivery log, replay."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_notifications.webhooks import service
from crm_notifications.webhooks.schemas import (
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _allow_private(request: Request) -> bool:
    return bool(request.app.state.settings.webhooks_allow_private)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    data: WebhookCreate, admin: AdminUser, db: DatabaseDep, request: Request
) -> WebhookCreated:
    return await service.create_webhook(
        db=db, data=data, actor_id=admin.user_id, allow_private=_allow_private(request)
    )


@router.get("", response_model=Page[WebhookRead])
async def list_webhooks(
    _: AdminUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Page[WebhookRead]:
    return await service.list_webhooks(db=db, limit=limit, cursor=cursor)


@router.get("/{webhook_id}", response_model=WebhookRead)
async def get_webhook(webhook_id: uuid.UUID, _: AdminUser, db: DatabaseDep) -> WebhookRead:
    return await service.get_webhook(db=db, webhook_id=str(webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookRead)
async def update_webhook(
    webhook_id: uuid.UUID, data: WebhookUpdate, _: AdminUser, db: DatabaseDep, request: Request
) -> WebhookRead:
    return await service.update_webhook(
        db=db, webhook_id=str(webhook_id), data=data, allow_private=_allow_private(request)
    )


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, _: AdminUser, db: DatabaseDep) -> Response:
    await service.delete_webhook(db=db, webhook_id=str(webhook_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryRead])
async def list_deliveries(
    webhook_id: uuid.UUID,
    _: AdminUser,
    db: DatabaseDep,
    status: Annotated[str | None, Query(pattern="^(pending|sending|succeeded|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Page[DeliveryRead]:
    return await service.list_deliveries(
        db=db, webhook_id=str(webhook_id), status=status, limit=limit, cursor=cursor
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
)
async def replay_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, _: AdminUser, db: DatabaseDep
) -> DeliveryRead:
    return await service.replay_delivery(
        db=db, webhook_id=str(webhook_id), delivery_id=str(delivery_id)
    )
