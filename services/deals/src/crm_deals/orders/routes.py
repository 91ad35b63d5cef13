"""HTTP routes of /orders: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from crm_deals.common import Seller
from crm_deals.orders import service
from crm_deals.orders.links import OrderLinksDep
from crm_deals.orders.schemas import OrderRead, OrderStatus, OrderStatusChange, PublicOrderRead
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/orders", tags=["orders"])


@router.get("")
async def list_orders(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[str | None, Query(max_length=200)] = None,
    deal_id: uuid.UUID | None = None,
    status: OrderStatus | None = None,
) -> Page[OrderRead]:
    """Orders of the deals the caller may see."""
    return await service.list_orders(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        deal_id=str(deal_id) if deal_id else None,
        status=status.value if status else None,
    )


@router.get("/{order_id}")
async def get_order(
    order_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> OrderRead:
    order = await service.get_order(db=db, principal=principal, order_id=str(order_id))
    response.headers["ETag"] = etag(order.version)
    return order


@router.post("/{order_id}/status")
async def change_order_status(
    order_id: uuid.UUID,
    data: OrderStatusChange,
    principal: Seller,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
    links: OrderLinksDep,
) -> OrderRead:
    """created -> invoiced -> paid -> shipped -> delivered, or cancelled before the end; else 409."""
    order = await service.change_status(
        db=db,
        principal=principal,
        order_id=str(order_id),
        status=data.status,
        expected_version=expected,
        links=links,
    )
    response.headers["ETag"] = etag(order.version)
    return order


# Unauthenticated: the gateway forwards its public order-status page here (public-routes.md).
public_router = APIRouter(prefix="/public/orders", tags=["public"])


@public_router.get("/{token}")
async def public_order_status(
    token: Annotated[str, Path(max_length=2000)], db: DatabaseDep, links: OrderLinksDep
) -> PublicOrderRead:
    """The status of the order a signed link names; 404 for a bad, tampered or expired token."""
    return await service.public_order(db=db, links=links, token=token)
