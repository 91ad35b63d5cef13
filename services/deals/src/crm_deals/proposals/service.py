"""Proposal use cases: priced in Decimal on the server, one currency, draft -> sent -> decided."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_deals.common import decimal_str
from crm_deals.deals.models import Deal
from crm_deals.money import MAX_AMOUNT, money_str
from crm_deals.orders.links import OrderLinks
from crm_deals.orders.service import create_from_proposal
from crm_deals.products.models import Product
from crm_deals.proposals.models import Proposal, ProposalItem
from crm_deals.proposals.pricing import line_total, proposal_total
from crm_deals.proposals.schemas import (
    ProposalCreate,
    ProposalItemIn,
    ProposalItemsReplace,
    ProposalRead,
    ProposalStatus,
)
from crm_kernel.auth import Principal
from crm_kernel.contracts.deals import (
    ProposalCreated,
    ProposalState,
    ProposalStatusChanged,
    ProposalUpdated,
)
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed, Unprocessable
from crm_kernel.versioning import check_version

SORTABLE = {"created_at": Proposal.created_at, "updated_at": Proposal.updated_at}

# Where each status may go; anything else is 409.
NEXT: dict[ProposalStatus, frozenset[ProposalStatus]] = {
    ProposalStatus.DRAFT: frozenset({ProposalStatus.SENT}),
    ProposalStatus.SENT: frozenset({ProposalStatus.ACCEPTED, ProposalStatus.REJECTED}),
    ProposalStatus.ACCEPTED: frozenset(),
    ProposalStatus.REJECTED: frozenset(),
}


def _item_error(index: int, field: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"items.{index}.{field}: {message}",
        errors=[{"field": f"items.{index}.{field}", "location": "body", "message": message}],
    )


def _state(proposal: Proposal, items: Sequence[ProposalItem], owner_id: str) -> dict[str, Any]:
    currency = proposal.currency
    return {
        "id": proposal.id,
        "deal_id": proposal.deal_id,
        "owner_id": owner_id,
        "currency": currency,
        "items": [
            {
                "product_id": i.product_id,
                "name": i.name,
                "quantity": decimal_str(i.quantity),
                "unit_price": decimal_str(i.unit_price),
                "discount_percent": decimal_str(i.discount_percent),
                "line_total": money_str(i.line_total, currency),
            }
            for i in items
        ],
        "total": money_str(proposal.total, currency),
        "status": proposal.status,
        "version": proposal.version,
        "created_at": proposal.created_at.isoformat(),
        "updated_at": proposal.updated_at.isoformat(),
    }


def to_read(proposal: Proposal, items: Sequence[ProposalItem]) -> ProposalRead:
    return ProposalRead.model_validate(_state(proposal, items, ""))


async def _visible_deal(session: AsyncSession, principal: Principal, deal_id: str) -> Deal:
    deal = (
        await session.scalars(
            select(Deal).where(Deal.id == deal_id, owner_filter(principal, Deal.owner_id))
        )
    ).first()
    if deal is None:
        raise Unprocessable(
            "No such deal.",
            errors=[{"field": "deal_id", "location": "body", "message": "no such deal"}],
        )
    return deal


async def _priced_items(
    session: AsyncSession, proposal_id: str, currency: str, items: Sequence[ProposalItemIn]
) -> list[ProposalItem]:
    """The lines with prices from the catalogue where not given; one currency or 422."""
    product_ids = {str(i.product_id) for i in items if i.product_id}
    products = {
        p.id: p
        for p in (await session.scalars(select(Product).where(Product.id.in_(product_ids)))).all()
    }
    lines = []
    for index, item in enumerate(items):
        product = products.get(str(item.product_id)) if item.product_id else None
        if item.product_id and (product is None or not product.active):
            raise _item_error(index, "product_id", "no such active product")
        if item.currency is not None and item.currency != currency:
            raise _item_error(index, "currency", f"mixed currencies: the proposal is in {currency}")
        if product is not None and product.currency != currency:
            raise _item_error(
                index,
                "product_id",
                f"mixed currencies: the product is priced in {product.currency}, "
                f"the proposal in {currency}",
            )
        name = item.name or (product.name if product else None)
        if name is None:
            raise _item_error(index, "name", "required without a product")
        unit_price = (
            item.unit_price
            if item.unit_price is not None
            else (product.unit_price if product else None)
        )
        if unit_price is None:
            raise _item_error(index, "unit_price", "required without a product")
        total = line_total(item.quantity, unit_price, item.discount_percent, currency)
        if total >= MAX_AMOUNT:
            raise _item_error(index, "quantity", "the line total is too large")
        lines.append(
            ProposalItem(
                proposal_id=proposal_id,
                line=index,
                product_id=product.id if product else None,
                name=name,
                quantity=item.quantity,
                unit_price=unit_price,
                discount_percent=item.discount_percent,
                line_total=total,
            )
        )
    return lines


def _checked_total(items: Sequence[ProposalItem], currency: str) -> Decimal:
    total = proposal_total((i.line_total for i in items), currency)
    if total >= MAX_AMOUNT:
        raise Unprocessable(
            "The proposal total is too large.",
            errors=[{"field": "items", "location": "body", "message": "total too large"}],
        )
    return total


async def create_proposal(
    *, db: Database, principal: Principal, data: ProposalCreate
) -> ProposalRead:
    """A draft proposal on a visible deal, its totals computed here (never taken from the client)."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        deal = await _visible_deal(session, principal, str(data.deal_id))
        currency = data.currency or deal.currency
        proposal_id = str(new_id())
        items = await _priced_items(session, proposal_id, currency, data.items)
        total = _checked_total(items, currency)
        proposal = Proposal(
            id=proposal_id,
            deal_id=deal.id,
            currency=currency,
            total=total,
            status=ProposalStatus.DRAFT.value,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(proposal)
        await session.flush()
        session.add_all(items)
        await session.flush()
        await add_event(
            session,
            ProposalCreated.model_validate(_state(proposal, items, deal.owner_id)),
            subject=proposal.id,
            actor=principal.user_id,
        )
        return to_read(proposal, items)


async def _items(session: AsyncSession, proposal_id: str) -> list[ProposalItem]:
    return list(
        (
            await session.scalars(
                select(ProposalItem)
                .where(ProposalItem.proposal_id == proposal_id)
                .order_by(ProposalItem.line)
            )
        ).all()
    )


def _visible(principal: Principal) -> Any:
    return (
        select(Proposal, Deal)
        .join(Deal, Deal.id == Proposal.deal_id)
        .where(owner_filter(principal, Deal.owner_id))
    )


async def get_proposal(*, db: Database, principal: Principal, proposal_id: str) -> ProposalRead:
    async with db.session() as session:
        row = (await session.execute(_visible(principal).where(Proposal.id == proposal_id))).first()
        if row is None:
            raise NotFound(f"No proposal {proposal_id}.")
        return to_read(row[0], await _items(session, proposal_id))


async def list_proposals(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    deal_id: str | None,
) -> Page[ProposalRead]:
    query = _visible(principal)
    if deal_id:
        query = query.where(Proposal.deal_id == deal_id)
    keys = parse_sort(sort, SORTABLE, "-created_at", Proposal.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
        items = [to_read(r[0], await _items(session, r[0].id)) for r in rows]
    return Page[ProposalRead](items=items, next_cursor=next_cursor)


async def replace_items(
    *,
    db: Database,
    principal: Principal,
    proposal_id: str,
    data: ProposalItemsReplace,
    expected_version: int | None,
) -> ProposalRead:
    """Replace a draft's lines and recompute its total; a sent proposal is fixed (409)."""
    try:
        async with db.transaction() as session:
            row = (
                await session.execute(_visible(principal).where(Proposal.id == proposal_id))
            ).first()
            if row is None:
                raise NotFound(f"No proposal {proposal_id}.")
            proposal, deal = row[0], row[1]
            check_version(proposal.version, expected_version)
            if proposal.status != ProposalStatus.DRAFT:
                raise Conflict(
                    f"The proposal is {proposal.status}; only a draft can change.",
                    current_status=proposal.status,
                )
            currency = data.currency or proposal.currency
            items = await _priced_items(session, proposal.id, currency, data.items)
            proposal.currency = currency
            proposal.total = _checked_total(items, currency)
            proposal.updated_at = datetime.now(UTC)
            await session.execute(
                delete(ProposalItem).where(ProposalItem.proposal_id == proposal.id)
            )
            await session.flush()
            session.add_all(items)
            await session.flush()
            await add_event(
                session,
                ProposalUpdated.model_validate(_state(proposal, items, deal.owner_id)),
                subject=proposal.id,
                actor=principal.user_id,
            )
            return to_read(proposal, items)
    except StaleDataError as exc:
        raise PreconditionFailed("The proposal was changed by someone else; reload it.") from exc


async def change_status(
    *,
    db: Database,
    principal: Principal,
    proposal_id: str,
    status: ProposalStatus,
    expected_version: int | None,
    links: OrderLinks | None,
) -> ProposalRead:
    """Send, accept or reject; accepting creates the order in the same transaction."""
    try:
        async with db.transaction() as session:
            row = (
                await session.execute(_visible(principal).where(Proposal.id == proposal_id))
            ).first()
            if row is None:
                raise NotFound(f"No proposal {proposal_id}.")
            proposal, deal = row[0], row[1]
            check_version(proposal.version, expected_version)
            current = ProposalStatus(proposal.status)
            if status not in NEXT[current]:
                raise Conflict(
                    f"A proposal cannot go from {current} to {status}.",
                    current_status=current.value,
                )
            proposal.status = status.value
            proposal.updated_at = datetime.now(UTC)
            await session.flush()
            items = await _items(session, proposal.id)
            state: ProposalState = ProposalStatusChanged.model_validate(
                {**_state(proposal, items, deal.owner_id), "previous_status": current.value}
            )
            await add_event(session, state, subject=proposal.id, actor=principal.user_id)
            if status is ProposalStatus.ACCEPTED:
                await create_from_proposal(session, proposal, deal, principal.user_id, links)
            return to_read(proposal, items)
    except StaleDataError as exc:
        raise PreconditionFailed("The proposal was changed by someone else; reload it.") from exc
