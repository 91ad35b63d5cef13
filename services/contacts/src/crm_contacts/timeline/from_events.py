"""System timeline entries from other services' events (one per event id; merges re-pointed)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.common import utcnow
from crm_contacts.contacts.models import Contact
from crm_contacts.timeline.models import DealContact, TimelineEntry
from crm_kernel.contracts.campaigns import MessageFact
from crm_kernel.contracts.deals import (
    DealLost,
    DealStageChanged,
    DealState,
    OrderStatusChanged,
    ProposalStatusChanged,
)
from crm_kernel.contracts.notifications import DeliveriesChanged, DeliveryChanged
from crm_kernel.db import insert_ignoring_duplicates, upsert_if_newer
from crm_kernel.events import Envelope

Row = dict[str, Any]
# Stage moves that have an entry of their own (won, lost, created).
_OWN_ENTRY_REASONS = frozenset({"win", "lose", "create"})


def _moment(value: str | None) -> datetime:
    """An event's ISO time (naive ones are UTC); now if missing or unreadable."""
    try:
        moment = datetime.fromisoformat(value) if value else utcnow()
    except ValueError:
        return utcnow()
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _row(
    envelope: Envelope,
    contact_id: str | None,
    kind: str,
    summary: str,
    at: str | None,
    *,
    deal_id: str | None = None,
    entry_id: str | None = None,
    **data: Any,
) -> Row | None:
    if not contact_id:
        return None
    return {
        "id": entry_id or envelope.id,
        "contact_id": contact_id,
        "type": kind,
        "occurred_at": _moment(at),
        "summary": summary[:2000],
        "deal_id": deal_id,
        "data": {k: v for k, v in data.items() if v is not None},
        "created_at": utcnow(),
    }


def deal_row(event: DealState, envelope: Envelope) -> Row | None:
    """deal.created / stage_changed / won / lost; other deal events add no entry."""
    verb = event.type.rsplit(".", 1)[-1]
    transition = getattr(event, "transition", None)
    if verb not in ("created", "stage_changed", "won", "lost") or transition is None:
        return None
    if isinstance(event, DealStageChanged) and transition.reason in _OWN_ENTRY_REASONS:
        return None
    summaries = {
        "created": f"Deal «{event.title}» opened",
        "stage_changed": f"Deal «{event.title}» moved {transition.direction}",
        "won": f"Deal «{event.title}» won",
        "lost": f"Deal «{event.title}» lost",
    }
    return _row(
        envelope,
        event.contact_id,
        f"deal.{verb}",
        summaries[verb],
        transition.entered_at,
        deal_id=event.id,
        title=event.title,
        stage_id=transition.to_stage_id,
        from_stage_id=transition.from_stage_id,
        amount=event.amount,
        currency=event.currency,
        lost_reason=event.lost_reason if isinstance(event, DealLost) else None,
    )


def proposal_row(
    event: ProposalStatusChanged, envelope: Envelope, contact_id: str | None
) -> Row | None:
    """A proposal that became `sent` (the deal's contact, from deal events)."""
    if event.status != "sent" or event.previous_status == "sent":
        return None
    return _row(
        envelope,
        contact_id,
        "proposal.sent",
        f"Proposal sent: {event.total} {event.currency}",
        event.updated_at,
        deal_id=event.deal_id,
        proposal_id=event.id,
        total=event.total,
        currency=event.currency,
    )


def order_row(event: OrderStatusChanged, envelope: Envelope, contact_id: str | None) -> Row | None:
    return _row(
        envelope,
        event.contact_id or contact_id,
        "order.status_changed",
        f"Order {event.previous_status} → {event.status}",
        event.updated_at,
        deal_id=event.deal_id,
        order_id=event.id,
        status=event.status,
        previous_status=event.previous_status,
        total=event.total,
        currency=event.currency,
    )


def message_row(event: MessageFact, envelope: Envelope) -> Row | None:
    """A campaign message sent to, opened or clicked by the contact."""
    verb = event.type.rsplit(".", 1)[-1]
    summary = f"Campaign {event.channel} {verb}" + (f": {event.url}" if event.url else "")
    return _row(
        envelope,
        event.contact_id,
        f"campaign.message.{verb}",
        summary,
        event.at,
        campaign_id=event.campaign_id,
        variant_id=event.variant_id,
        channel=event.channel,
        url=event.url,
    )


def delivery_row(
    event: DeliveryChanged, envelope: Envelope, *, entry_id: str | None = None
) -> Row | None:
    """A notification to the contact went out or failed (only when it names the contact)."""
    verb = event.type.rsplit(".", 1)[-1]
    summary = f"Notification ({event.channel}) {verb}" + (f": {event.error}" if event.error else "")
    return _row(
        envelope,
        event.contact_id,
        f"notification.{verb}",
        summary,
        event.at,
        entry_id=entry_id,
        notification_id=event.notification_id,
        channel=event.channel,
        source_type=event.source_type,
        source_id=event.source_id,
        error=event.error,
    )


def delivery_batch_rows(batch: DeliveriesChanged, envelope: Envelope) -> list[Row | None]:
    """A bulk batch's sent and failed deliveries, an entry each (as their single events give);
    each entry's id derives from the event's and the notification's, so a redelivery adds none."""
    return [
        delivery_row(e, envelope, entry_id=str(uuid.uuid5(envelope.event_uuid, e.notification_id)))
        for e in batch.events()
        if e.status in ("sent", "failed")
    ]


async def keep_deal_contacts(session: AsyncSession, events: Sequence[DealState]) -> None:
    """Remember each deal's contact (newest version wins), for proposal and order entries."""
    table = cast(Table, DealContact.__table__)
    for event in events:
        row = {"deal_id": event.id, "contact_id": event.contact_id, "version": event.version}
        await upsert_if_newer(session, table, row, key=["deal_id"], version="version")


async def deal_contact(session: AsyncSession, deal_id: str) -> str | None:
    contact_id: str | None = await session.scalar(
        select(DealContact.contact_id).where(DealContact.deal_id == deal_id)
    )
    return contact_id


async def add_entries(session: AsyncSession, rows: Sequence[Row | None]) -> None:
    """Insert the entries in one statement: merged contacts' go to the survivor, unknown
    and erased contacts get none, an entry already there (redelivery) is kept."""
    wanted = [r for r in rows if r is not None]
    if not wanted:
        return
    found = await session.execute(
        select(Contact.id, Contact.merged_into).where(
            Contact.id.in_({r["contact_id"] for r in wanted}), Contact.erased_at.is_(None)
        )
    )
    target = {contact_id: merged_into or contact_id for contact_id, merged_into in found}
    placed = [
        {**r, "contact_id": target[r["contact_id"]]} for r in wanted if r["contact_id"] in target
    ]
    table = cast(Table, TimelineEntry.__table__)
    await insert_ignoring_duplicates(session, table, placed)
