"""HTTP routes of /products: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from crm_deals.common import PipelineManager
from crm_deals.products import service
from crm_deals.products.schemas import ProductCreate, ProductRead, ProductUpdate
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/products", tags=["products"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_product(
    data: ProductCreate, principal: PipelineManager, db: DatabaseDep, response: Response
) -> ProductRead:
    """Add a product to the catalogue (admins and heads of sales)."""
    product = await service.create_product(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{API_PREFIX}/products/{product.id}"
    response.headers["ETag"] = etag(product.version)
    return product


@router.get("")
async def list_products(
    _: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[str | None, Query(max_length=200)] = None,
    active: bool | None = None,
) -> Page[ProductRead]:
    return await service.list_products(db=db, limit=limit, cursor=cursor, sort=sort, active=active)


@router.get("/{product_id}")
async def get_product(
    product_id: uuid.UUID, _: CurrentUser, db: DatabaseDep, response: Response
) -> ProductRead:
    product = await service.get_product(db=db, product_id=str(product_id))
    response.headers["ETag"] = etag(product.version)
    return product


@router.patch("/{product_id}")
async def update_product(
    product_id: uuid.UUID,
    data: ProductUpdate,
    principal: PipelineManager,
    db: DatabaseDep,
    expected: IfMatch,
    response: Response,
) -> ProductRead:
    """Change name, price or activity; 412 if If-Match is stale."""
    product = await service.update_product(
        db=db,
        principal=principal,
        product_id=str(product_id),
        data=data,
        expected_version=expected,
    )
    response.headers["ETag"] = etag(product.version)
    return product
