"""Order use cases: created from accepted proposals, moved through a validated status machine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_deals.deals.models import Deal
from crm_deals.money import money_str
from crm_deals.orders.links import OrderLinks
from crm_deals.orders.models import Order, OrderStatusRecord
from crm_deals.orders.schemas import (
    TRANSITIONS,
    OrderRead,
    OrderStatus,
    PublicOrderRead,
    StatusAt,
)
from crm_deals.proposals.models import Proposal
from crm_kernel.auth import Principal
from crm_kernel.contracts.deals import OrderCreated, OrderStatusChanged
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed
from crm_kernel.signing import BadToken
from crm_kernel.versioning import check_version

SORTABLE = {"created_at": Order.created_at, "updated_at": Order.updated_at}


def _state(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "deal_id": order.deal_id,
        "proposal_id": order.proposal_id,
        "contact_id": order.contact_id,
        "total": money_str(order.total, order.currency),
        "currency": order.currency,
        "status": order.status,
        "version": order.version,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }


def _event_state(order: Order, owner_id: str, links: OrderLinks | None) -> dict[str, Any]:
    status_url = links.url(order.id) if links else None
    return {**_state(order), "owner_id": owner_id, "status_url": status_url}


def _record_status(session: AsyncSession, order: Order, at: datetime) -> None:
    session.add(OrderStatusRecord(id=str(new_id()), order_id=order.id, status=order.status, at=at))


def to_read(order: Order) -> OrderRead:
    return OrderRead.model_validate(_state(order))


async def create_from_proposal(
    session: AsyncSession, proposal: Proposal, deal: Deal, actor: str, links: OrderLinks | None
) -> Order:
    """The order of an accepted proposal (inside the accepting transaction)."""
    now = datetime.now(UTC)
    order = Order(
        id=str(new_id()),
        deal_id=deal.id,
        proposal_id=proposal.id,
        contact_id=deal.contact_id,
        total=proposal.total,
        currency=proposal.currency,
        status=OrderStatus.CREATED.value,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    _record_status(session, order, now)
    await session.flush()
    await add_event(
        session,
        OrderCreated.model_validate(_event_state(order, deal.owner_id, links)),
        subject=order.id,
        actor=actor,
    )
    return order


def _visible(principal: Principal) -> Any:
    """Orders of deals the caller may see."""
    return (
        select(Order)
        .join(Deal, Deal.id == Order.deal_id)
        .where(owner_filter(principal, Deal.owner_id))
    )


async def get_order(*, db: Database, principal: Principal, order_id: str) -> OrderRead:
    async with db.session() as session:
        order = (await session.scalars(_visible(principal).where(Order.id == order_id))).first()
    if order is None:
        raise NotFound(f"No order {order_id}.")
    return to_read(order)


async def list_orders(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    deal_id: str | None,
    status: str | None,
) -> Page[OrderRead]:
    query = _visible(principal)
    if deal_id:
        query = query.where(Order.deal_id == deal_id)
    if status:
        query = query.where(Order.status == status)
    keys = parse_sort(sort, SORTABLE, "-created_at", Order.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[OrderRead](items=[to_read(r[0]) for r in rows], next_cursor=next_cursor)


async def change_status(
    *,
    db: Database,
    principal: Principal,
    order_id: str,
    status: OrderStatus,
    expected_version: int | None,
    links: OrderLinks | None,
) -> OrderRead:
    """Move an order one legal step (or cancel it); 409 for an illegal transition."""
    try:
        async with db.transaction() as session:
            row = (
                await session.execute(
                    _visible(principal).add_columns(Deal.owner_id).where(Order.id == order_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"No order {order_id}.")
            order, owner_id = row[0], row[1]
            check_version(order.version, expected_version)
            current = OrderStatus(order.status)
            if status not in TRANSITIONS[current]:
                allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
                raise Conflict(
                    f"An order cannot go from {current} to {status}; allowed: {allowed}.",
                    errors=[
                        {"field": "status", "location": "body", "message": "illegal transition"}
                    ],
                    current_status=current.value,
                )
            order.status = status.value
            order.updated_at = datetime.now(UTC)
            _record_status(session, order, order.updated_at)
            await session.flush()
            await add_event(
                session,
                OrderStatusChanged.model_validate(
                    {**_event_state(order, owner_id, links), "previous_status": current.value}
                ),
                subject=order.id,
                actor=principal.user_id,
            )
    except StaleDataError as exc:
        raise PreconditionFailed("The order was changed by someone else; reload it.") from exc
    return to_read(order)


def order_number(order: Order) -> str:
    """A short number to quote on the phone: the random tail of the order's id, upper-case."""
    return order.id.replace("-", "")[-10:].upper()


async def public_order(*, db: Database, links: OrderLinks | None, token: str) -> PublicOrderRead:
    """The order a signed link names, with its status history; 404 for any bad token."""
    try:
        if links is None:
            raise BadToken("links are off")
        order_id = links.order_id(token)
    except BadToken as exc:
        raise NotFound("This link is not valid.") from exc
    async with db.session() as session:
        order = await session.get(Order, order_id)
        if order is None:
            raise NotFound("This link is not valid.")
        history = (
            await session.scalars(
                select(OrderStatusRecord)
                .where(OrderStatusRecord.order_id == order.id)
                .order_by(OrderStatusRecord.at, OrderStatusRecord.id)
            )
        ).all()
    return PublicOrderRead(
        number=order_number(order),
        status=OrderStatus(order.status),
        status_history=[StatusAt(status=OrderStatus(h.status), at=h.at) for h in history],
        total=money_str(order.total, order.currency) or "0",
        currency=order.currency,
        updated_at=order.updated_at,
    )
