"""Deal use cases: each one transaction, its events written to the outbox with the change."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_deals.common import decimal_str
from crm_deals.contact_replica import ContactRef
from crm_deals.deals.events import deal_event, deal_state
from crm_deals.deals.history import enter_stage
from crm_deals.deals.models import Deal, StageHistory
from crm_deals.deals.schemas import (
    DealCreate,
    DealLose,
    DealMove,
    DealRead,
    DealReopen,
    DealStatus,
    DealUpdate,
    StageStay,
)
from crm_deals.money import minor_unit
from crm_deals.pipelines.defaults import DEFAULT_PIPELINE_ID
from crm_deals.pipelines.models import Pipeline, Stage
from crm_deals.pipelines.schemas import StageKind
from crm_deals.pipelines.service import live_stages
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.deals import (
    DealCreated,
    DealLost,
    DealOwnerChanged,
    DealReopened,
    DealStageChanged,
    DealUpdated,
    DealWon,
    StageTransition,
)
from crm_kernel.db import Database
from crm_kernel.directory import can_see_owner, owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from crm_kernel.versioning import check_version

SORTABLE = {
    "created_at": Deal.created_at,
    "updated_at": Deal.updated_at,
    "title": Deal.title,
}


def _invalid(field: str, message: str, detail: str | None = None) -> Unprocessable:
    return Unprocessable(
        detail or f"{field}: {message}",
        errors=[{"field": field, "location": "body", "message": message}],
    )


def to_read(deal: Deal, contact_name: str | None = None) -> DealRead:
    # An erased contact's replica row has an empty name: shown as unknown.
    return DealRead.model_validate({**deal_state(deal), "contact_name": contact_name or None})


def with_contact_name(query: Select[Any]) -> Select[Any]:
    """A deal query that also brings the contact's name from the replica (None if unknown)."""
    return query.add_columns(ContactRef.name).outerjoin(
        ContactRef, ContactRef.id == Deal.contact_id
    )


async def _contact_name(session: AsyncSession, contact_id: str | None) -> str | None:
    if contact_id is None:
        return None
    return await session.scalar(select(ContactRef.name).where(ContactRef.id == contact_id))


async def may_assign(session: AsyncSession, principal: Principal, owner_id: str) -> bool:
    """Admins assign anyone; a head of sales themselves or their team members; a rep themselves."""
    if owner_id == principal.user_id or principal.role is Role.ADMIN:
        return True
    if principal.role is Role.HEAD_OF_SALES:
        return await can_see_owner(session, principal, owner_id)
    return False


def _check_amount(amount: Decimal | None, currency: str) -> None:
    """More decimals than the currency has (e.g. 10.005 RUB, 5.5 JPY) is refused, not rounded."""
    if amount is None:
        return
    exponent = amount.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > minor_unit(currency):
        raise _invalid(
            "amount",
            f"{currency} has {minor_unit(currency)} decimal places",
            f"The amount has more decimals than {currency} allows.",
        )


async def _stage_of(
    session: AsyncSession, pipeline_id: str, stage_id: str, field: str = "stage_id"
) -> tuple[Stage, list[Stage]]:
    """A live stage of the pipeline (422 naming the field otherwise) and all its live stages."""
    stages = await live_stages(session, pipeline_id)
    stage = next((s for s in stages if s.id == stage_id), None)
    if stage is None:
        raise _invalid(field, "not a stage of the deal's pipeline")
    return stage, stages


async def _confirm_stage_before_writing(session: AsyncSession, stage: Stage) -> bool:
    """On PostgreSQL, `_confirm_stage_live` before the deal is written; False on SQLite.

    A stage deletion locks the stage first and the deals and their board totals
    after: taking the stage's share lock first keeps the same order, so the two
    cannot deadlock. SQLite checks after writing instead (the caller does), once
    the transaction holds the write lock and so reads the latest commit.
    """
    if session.get_bind().dialect.name == "sqlite":
        return False
    await _confirm_stage_live(session, stage)
    return True


async def _confirm_stage_live(session: AsyncSession, stage: Stage) -> None:
    """422 if the stage was deleted while this change was being made.

    On PostgreSQL the share lock makes a concurrent stage deletion wait for
    this transaction (and then move this deal too) or, if it committed first,
    shows its deletion; on SQLite, called once this transaction holds the write
    lock, it reads the latest commit.
    """
    live = await session.scalar(
        select(Stage.id)
        .where(Stage.id == stage.id, Stage.deleted_at.is_(None))
        .with_for_update(read=True)
    )
    if live is None:
        raise _invalid("stage_id", "the stage was deleted meanwhile")


@asynccontextmanager
async def _visible_deal(
    db: Database, principal: Principal, deal_id: str, expected_version: int | None
) -> AsyncIterator[tuple[AsyncSession, Deal]]:
    """One change to a deal the caller may see (404 otherwise), version-checked, in one transaction.

    The deal's version is in the UPDATE's WHERE clause: of two concurrent
    changes, the second finds no row and gets 412 (with If-Match) or 409.
    """
    try:
        async with db.transaction() as session:
            deal = (
                await session.scalars(
                    select(Deal).where(Deal.id == deal_id, owner_filter(principal, Deal.owner_id))
                )
            ).first()
            if deal is None:
                raise NotFound(f"No deal {deal_id}.")
            check_version(deal.version, expected_version)
            # Flushed explicitly once the change is complete: an automatic flush
            # before a query in the middle would bump the version twice.
            with session.no_autoflush:
                yield session, deal
    except StaleDataError as exc:
        if expected_version is not None:
            raise PreconditionFailed("The deal was changed by someone else; reload it.") from exc
        raise Conflict("The deal was changed by someone else meanwhile; try again.") from exc


async def create_deal(
    *, db: Database, principal: Principal, data: DealCreate, default_currency: str
) -> DealRead:
    """Open a deal in the first open stage of its pipeline (or the open stage named)."""
    owner_id = str(data.owner_id or principal.user_id)
    currency = data.currency or default_currency
    _check_amount(data.amount, currency)
    pipeline_id = str(data.pipeline_id) if data.pipeline_id else DEFAULT_PIPELINE_ID
    now = datetime.now(UTC)
    async with db.transaction() as session:
        if not await may_assign(session, principal, owner_id):
            raise Forbidden(
                "You may not make this user the owner.",
                errors=[{"field": "owner_id", "location": "body", "message": "not assignable"}],
            )
        if await session.get(Pipeline, pipeline_id) is None:
            raise _invalid("pipeline_id", "no such pipeline")
        stages = await live_stages(session, pipeline_id)
        if data.stage_id is not None:
            stage, _ = await _stage_of(session, pipeline_id, str(data.stage_id))
        else:
            stage = next(s for s in stages if s.kind == StageKind.OPEN)
        if stage.kind != StageKind.OPEN:
            raise _invalid("stage_id", "a new deal starts in an open stage")
        deal = Deal(
            id=str(new_id()),
            title=data.title,
            contact_id=str(data.contact_id) if data.contact_id else None,
            company_id=str(data.company_id) if data.company_id else None,
            pipeline_id=pipeline_id,
            owner_id=owner_id,
            amount=data.amount,
            currency=currency,
            expected_close_date=data.expected_close_date,
            source_campaign_id=str(data.source_campaign_id) if data.source_campaign_id else None,
            source="manual",
        )
        await insert_deal(
            session, deal, stage=stage, stages=stages, actor=principal.user_id, now=now
        )
        return to_read(deal, await _contact_name(session, deal.contact_id))


async def insert_deal(
    session: AsyncSession,
    deal: Deal,
    *,
    stage: Stage,
    stages: Sequence[Stage],
    actor: str | None,
    now: datetime,
) -> None:
    """Open `deal` (its own fields set) in `stage`: first stay, `created` event to the outbox."""
    deal.stage_id = stage.id
    deal.status = DealStatus.OPEN.value
    deal.stage_entered_at = now
    deal.created_at = now
    deal.updated_at = now
    checked_first = await _confirm_stage_before_writing(session, stage)
    session.add(deal)
    await session.flush()
    transition = await enter_stage(
        session, deal, stages=stages, to=stage, reason="create", actor=actor, now=now, created=True
    )
    await session.flush()
    if not checked_first:
        await _confirm_stage_live(session, stage)
    await add_event(
        session, deal_event(DealCreated, deal, transition=transition), subject=deal.id, actor=actor
    )


async def get_deal(*, db: Database, principal: Principal, deal_id: str) -> DealRead:
    """One deal, or 404 when it does not exist or the caller may not see it."""
    async with db.session() as session:
        row = (
            await session.execute(
                with_contact_name(
                    select(Deal).where(Deal.id == deal_id, owner_filter(principal, Deal.owner_id))
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"No deal {deal_id}.")
    return to_read(row[0], row[1])


async def list_deals(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    sort: str | None,
    filters: dict[str, str | None],
) -> Page[DealRead]:
    """The deals the caller may see, filtered (pipeline, stage, owner, status, contact...), paged."""
    query = select(Deal).where(owner_filter(principal, Deal.owner_id))
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(Deal, name) == value)
    keys = parse_sort(sort, SORTABLE, "-created_at", Deal.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(
            session, with_contact_name(query), keys, limit=limit, cursor=cursor
        )
    return Page[DealRead](items=[to_read(r[0], r[1]) for r in rows], next_cursor=next_cursor)


async def stage_history(*, db: Database, principal: Principal, deal_id: str) -> list[StageStay]:
    """Every stay of a visible deal in a stage, oldest first."""
    async with db.session() as session:
        visible = await session.scalar(
            select(Deal.id).where(Deal.id == deal_id, owner_filter(principal, Deal.owner_id))
        )
        if visible is None:
            raise NotFound(f"No deal {deal_id}.")
        rows = (
            await session.scalars(
                select(StageHistory)
                .where(StageHistory.deal_id == deal_id)
                .order_by(StageHistory.entered_at, StageHistory.id)
            )
        ).all()
    return [
        StageStay.model_validate(
            {
                "id": r.id,
                "from_stage_id": r.from_stage_id,
                "to_stage_id": r.to_stage_id,
                "to_position": r.to_position,
                "to_probability": decimal_str(r.to_probability),
                "reason": r.reason,
                "entered_at": r.entered_at,
                "left_at": r.left_at,
                "moved_by": r.moved_by,
            }
        )
        for r in rows
    ]


_NOT_NULL = ("title", "owner_id", "currency")


async def update_deal(
    *,
    db: Database,
    principal: Principal,
    deal_id: str,
    data: DealUpdate,
    expected_version: int | None,
) -> DealRead:
    """Change a deal's fields; a new owner also publishes owner_changed."""
    fields = data.model_fields_set
    for name in _NOT_NULL:
        if name in fields and getattr(data, name) is None:
            raise _invalid(name, "cannot be null")
    async with _visible_deal(db, principal, deal_id, expected_version) as (session, deal):
        previous_owner = deal.owner_id
        changed: list[str] = []
        for name in sorted(fields):
            value = getattr(data, name)
            if name in ("contact_id", "company_id", "owner_id", "source_campaign_id"):
                value = str(value) if value is not None else None
            if getattr(deal, name) != value:
                setattr(deal, name, value)
                changed.append(name)
        _check_amount(deal.amount, deal.currency)
        if "owner_id" in changed and not await may_assign(session, principal, deal.owner_id):
            raise Forbidden(
                "You may not make this user the owner.",
                errors=[{"field": "owner_id", "location": "body", "message": "not assignable"}],
            )
        if not changed:
            return to_read(deal, await _contact_name(session, deal.contact_id))
        deal.updated_at = datetime.now(UTC)
        await session.flush()
        others = [c for c in changed if c != "owner_id"]
        if others:
            await add_event(
                session,
                deal_event(DealUpdated, deal, changed_fields=others),
                subject=deal.id,
                actor=principal.user_id,
            )
        if "owner_id" in changed:
            await add_event(
                session,
                deal_event(DealOwnerChanged, deal, previous_owner_id=previous_owner),
                subject=deal.id,
                actor=principal.user_id,
            )
        return to_read(deal, await _contact_name(session, deal.contact_id))


async def _transit(
    session: AsyncSession,
    deal: Deal,
    principal: Principal,
    *,
    to: Stage,
    stages: Sequence[Stage],
    reason: str,
    status_event: type[DealWon | DealLost | DealReopened] | None,
) -> DealRead:
    """Move the deal, then publish stage_changed (and won/lost/reopened when it is that)."""
    now = datetime.now(UTC)
    checked_first = await _confirm_stage_before_writing(session, to)
    transition: StageTransition = await enter_stage(
        session, deal, stages=stages, to=to, reason=reason, actor=principal.user_id, now=now
    )
    deal.updated_at = now
    await session.flush()
    if not checked_first:
        await _confirm_stage_live(session, to)
    for schema in (DealStageChanged, status_event):
        if schema is not None:
            await add_event(
                session,
                deal_event(schema, deal, transition=transition),
                subject=deal.id,
                actor=principal.user_id,
            )
    return to_read(deal, await _contact_name(session, deal.contact_id))


def _must_be_open(deal: Deal) -> None:
    if deal.status != DealStatus.OPEN:
        raise Conflict(f"The deal is {deal.status}; reopen it first.")


async def move_deal(
    *,
    db: Database,
    principal: Principal,
    deal_id: str,
    data: DealMove,
    expected_version: int | None,
) -> DealRead:
    """Move an open deal to any open stage of its pipeline (forwards, backwards, skipping).

    Moving to the won stage wins the deal; the lost stage needs a reason (`/lose`).
    Moving to the stage it is in changes nothing.
    """
    async with _visible_deal(db, principal, deal_id, expected_version) as (session, deal):
        _must_be_open(deal)
        stage, stages = await _stage_of(session, deal.pipeline_id, str(data.stage_id))
        if stage.id == deal.stage_id:
            return to_read(deal, await _contact_name(session, deal.contact_id))
        if stage.kind == StageKind.LOST:
            raise _invalid("stage_id", "a lost deal needs a reason: use /lose")
        if stage.kind == StageKind.WON:
            _close(deal, DealStatus.WON)
            return await _transit(
                session,
                deal,
                principal,
                to=stage,
                stages=stages,
                reason="win",
                status_event=DealWon,
            )
        return await _transit(
            session, deal, principal, to=stage, stages=stages, reason="move", status_event=None
        )


def _close(deal: Deal, status: DealStatus) -> None:
    deal.status = status.value
    deal.closed_at = datetime.now(UTC)


async def win_deal(
    *, db: Database, principal: Principal, deal_id: str, expected_version: int | None
) -> DealRead:
    """Win an open deal: it moves to its pipeline's won stage."""
    async with _visible_deal(db, principal, deal_id, expected_version) as (session, deal):
        _must_be_open(deal)
        stages = await live_stages(session, deal.pipeline_id)
        won = next(s for s in stages if s.kind == StageKind.WON)
        _close(deal, DealStatus.WON)
        return await _transit(
            session, deal, principal, to=won, stages=stages, reason="win", status_event=DealWon
        )


async def lose_deal(
    *,
    db: Database,
    principal: Principal,
    deal_id: str,
    data: DealLose,
    reasons: Sequence[str],
    expected_version: int | None,
) -> DealRead:
    """Lose an open deal with a reason from the list (or "other" with a comment)."""
    if data.reason != "other" and data.reason not in reasons:
        raise _invalid("reason", f"one of: {', '.join([*reasons, 'other'])}")
    if data.reason == "other" and not data.comment:
        raise _invalid("comment", "required when the reason is other")
    async with _visible_deal(db, principal, deal_id, expected_version) as (session, deal):
        _must_be_open(deal)
        stages = await live_stages(session, deal.pipeline_id)
        lost = next(s for s in stages if s.kind == StageKind.LOST)
        _close(deal, DealStatus.LOST)
        deal.lost_reason = data.reason
        deal.lost_comment = data.comment
        return await _transit(
            session, deal, principal, to=lost, stages=stages, reason="lose", status_event=DealLost
        )


async def reopen_deal(
    *,
    db: Database,
    principal: Principal,
    deal_id: str,
    data: DealReopen,
    expected_version: int | None,
) -> DealRead:
    """Reopen a won or lost deal into an open stage (default: the one it closed from)."""
    async with _visible_deal(db, principal, deal_id, expected_version) as (session, deal):
        if deal.status == DealStatus.OPEN:
            raise Conflict("The deal is already open.")
        stages = await live_stages(session, deal.pipeline_id)
        if data.stage_id is not None:
            stage, _ = await _stage_of(session, deal.pipeline_id, str(data.stage_id))
            if stage.kind != StageKind.OPEN:
                raise _invalid("stage_id", "a reopened deal goes to an open stage")
        else:
            came_from = await session.scalar(
                select(StageHistory.from_stage_id)
                .where(StageHistory.deal_id == deal.id, StageHistory.left_at.is_(None))
                .limit(1)
            )
            open_stages = [s for s in stages if s.kind == StageKind.OPEN]
            stage = next((s for s in open_stages if s.id == came_from), open_stages[0])
        deal.status = DealStatus.OPEN.value
        deal.closed_at = None
        deal.lost_reason = None
        deal.lost_comment = None
        return await _transit(
            session,
            deal,
            principal,
            to=stage,
            stages=stages,
            reason="reopen",
            status_event=DealReopened,
        )
