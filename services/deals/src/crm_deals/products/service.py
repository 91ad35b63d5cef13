"""Product use cases: each one transaction, its event written to the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from crm_deals.money import decimals_of, minor_unit, money_str
from crm_deals.products.models import Product
from crm_deals.products.schemas import ProductCreate, ProductRead, ProductUpdate
from crm_kernel.auth import Principal
from crm_kernel.contracts.deals import ProductCreated, ProductState, ProductUpdated
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed, Unprocessable
from crm_kernel.versioning import check_version

SORTABLE = {"name": Product.name, "sku": Product.sku, "created_at": Product.created_at}


def _state(product: Product) -> dict[str, object]:
    return {
        "id": product.id,
        "name": product.name,
        "sku": product.sku,
        "unit_price": money_str(product.unit_price, product.currency),
        "currency": product.currency,
        "active": product.active,
        "version": product.version,
    }


def to_read(product: Product) -> ProductRead:
    return ProductRead.model_validate(
        {**_state(product), "created_at": product.created_at, "updated_at": product.updated_at}
    )


def _event(schema: type[ProductState], product: Product) -> ProductState:
    return schema.model_validate(_state(product))


def _check_price(product: Product) -> None:
    if decimals_of(product.unit_price) > minor_unit(product.currency):
        raise Unprocessable(
            f"The price has more decimals than {product.currency} allows.",
            errors=[{"field": "unit_price", "location": "body", "message": "too many decimals"}],
        )


def _duplicate_sku() -> Conflict:
    return Conflict(
        "A product with this SKU exists.",
        errors=[{"field": "sku", "location": "body", "message": "already in use"}],
    )


async def create_product(*, db: Database, principal: Principal, data: ProductCreate) -> ProductRead:
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            if await session.scalar(select(Product.id).where(Product.sku == data.sku)):
                raise _duplicate_sku()
            product = Product(
                id=str(new_id()),
                name=data.name,
                sku=data.sku,
                unit_price=data.unit_price,
                currency=data.currency,
                active=data.active,
                created_at=now,
                updated_at=now,
            )
            _check_price(product)
            session.add(product)
            await session.flush()
            await add_event(
                session,
                _event(ProductCreated, product),
                subject=product.id,
                actor=principal.user_id,
            )
    except IntegrityError as exc:
        raise _duplicate_sku() from exc  # a concurrent create took the SKU
    return to_read(product)


async def get_product(*, db: Database, product_id: str) -> ProductRead:
    async with db.session() as session:
        product = await session.get(Product, product_id)
    if product is None:
        raise NotFound(f"No product {product_id}.")
    return to_read(product)


async def list_products(
    *, db: Database, limit: int, cursor: str | None, sort: str | None, active: bool | None
) -> Page[ProductRead]:
    query = select(Product)
    if active is not None:
        query = query.where(Product.active == active)
    keys = parse_sort(sort, SORTABLE, "name", Product.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[ProductRead](items=[to_read(r[0]) for r in rows], next_cursor=next_cursor)


async def update_product(
    *,
    db: Database,
    principal: Principal,
    product_id: str,
    data: ProductUpdate,
    expected_version: int | None,
) -> ProductRead:
    try:
        async with db.transaction() as session:
            product = await session.get(Product, product_id)
            if product is None:
                raise NotFound(f"No product {product_id}.")
            check_version(product.version, expected_version)
            for name in data.model_fields_set:
                value = getattr(data, name)
                if value is None:
                    raise Unprocessable(
                        f"{name} cannot be null.",
                        errors=[{"field": name, "location": "body", "message": "cannot be null"}],
                    )
                setattr(product, name, value)
            _check_price(product)
            product.updated_at = datetime.now(UTC)
            await session.flush()
            await add_event(
                session,
                _event(ProductUpdated, product),
                subject=product.id,
                actor=principal.user_id,
            )
    except StaleDataError as exc:
        raise PreconditionFailed("The product was changed by someone else; reload it.") from exc
    return to_read(product)
