"""Delivery reports from notifications make ledger rows final, and become message facts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import Campaign, LedgerRow
from crm_campaigns.campaigns.state import report_progress
from crm_campaigns.events.service import record_invitations
from crm_campaigns.recipients.addresses import normalise
from crm_campaigns.recipients.replica import suppress
from crm_kernel.contracts.campaigns import (
    MessageBounced,
    MessageComplained,
    MessageDelivered,
    MessageFact,
    MessageFailed,
    MessageSent,
)
from crm_kernel.contracts.notifications import DeliveryChanged
from crm_kernel.events import IntegrationEvent
from crm_kernel.outbox import add_event, add_events

KEY_PREFIX = "campaign:"
# How far along a row is: a late `sent` never undoes a `delivered` or a `bounced`.
RANK = {
    "held": 0,
    "pending": 0,
    "queued": 1,
    "suppressed": 2,
    "failed": 2,
    "sent": 2,
    "delivered": 3,
    "bounced": 4,
    "cancelled": 5,
}
NEW_STATUS = {
    "crm.notifications.delivery.sent": "sent",
    "crm.notifications.delivery.failed": "failed",
    "crm.notifications.delivery.suppressed": "suppressed",
    "crm.notifications.delivery.delivered": "delivered",
    "crm.notifications.delivery.bounced": "bounced",
}
FACTS: dict[str, type[MessageFact]] = {
    "sent": MessageSent,
    "failed": MessageFailed,
    "delivered": MessageDelivered,
    "bounced": MessageBounced,
}


def _campaign_and_contact(event: DeliveryChanged) -> tuple[str, str] | None:
    """Which ledger row a delivery report is about: by its key, or by source and contact."""
    if event.key.startswith(KEY_PREFIX):
        campaign_id, _, contact_id = event.key.removeprefix(KEY_PREFIX).partition(":")
        if campaign_id and contact_id:
            return campaign_id, contact_id
    if event.source_type == "campaign" and event.source_id and event.contact_id:
        return event.source_id, event.contact_id
    return None


def _at(event: DeliveryChanged) -> datetime:
    try:
        moment = datetime.fromisoformat(event.at)
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Row:
    """What a delivery report reads and changes of a ledger row (plain data, no ORM object)."""

    id: int
    campaign_id: str
    contact_id: str
    variant_id: str | None
    address: str
    status: str
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    error: str | None
    bounced_at: datetime | None
    complained_at: datetime | None

    def changes(self) -> dict[str, Any]:
        """The values a report may change (never the address: an erasure may blank it meanwhile)."""
        return {c: getattr(self, c) for c in _CHANGES}


_ROW_COLUMNS = [getattr(LedgerRow, f.name) for f in fields(_Row)]
_CHANGES = (
    "status",
    "sent_at",
    "delivered_at",
    "failed_at",
    "error",
    "bounced_at",
    "complained_at",
)


async def apply_deliveries(session: AsyncSession, events: list[DeliveryChanged]) -> None:
    """Move each row forward (never back) and publish the matching message facts.

    A campaign of 100,000 recipients brings as many delivery reports, so a batch
    costs one query for its rows, one UPDATE (executemany) for the rows it
    changed and one insert for its facts; the rows are plain data, not ORM objects.
    """
    wanted = {i: found for i, e in enumerate(events) if (found := _campaign_and_contact(e))}
    if not wanted:
        return
    pairs = set(wanted.values())
    selected = await session.execute(
        select(*_ROW_COLUMNS)
        .where(tuple_(LedgerRow.campaign_id, LedgerRow.contact_id).in_(list(pairs)))
        .order_by(LedgerRow.id)
        # PostgreSQL: another replica's report for the same row waits for this batch.
        .with_for_update()
    )
    rows = {(r.campaign_id, r.contact_id): _Row(**r._mapping) for r in selected}
    campaign_ids = {campaign_id for campaign_id, _ in pairs}
    campaigns = {
        c.id: c
        for c in await session.execute(
            select(Campaign.id, Campaign.channel, Campaign.marketing_event_id).where(
                Campaign.id.in_(campaign_ids)
            )
        )
    }
    facts: list[IntegrationEvent] = []
    changed: dict[int, _Row] = {}
    invited: dict[str, list[str]] = defaultdict(list)
    for i, event in enumerate(events):
        row = rows.get(wanted.get(i, ("", "")))
        if row is None:
            continue
        before = row.changes()
        fact = await _apply(session, row, event)
        if row.changes() != before:
            changed[row.id] = row
        if fact is None:
            continue
        campaign = campaigns.get(row.campaign_id)
        if fact is MessageSent and campaign is not None and campaign.marketing_event_id:
            invited[campaign.marketing_event_id].append(row.contact_id)
        facts.append(
            fact(
                campaign_id=row.campaign_id,
                variant_id=row.variant_id,
                contact_id=row.contact_id,
                channel=campaign.channel if campaign is not None else event.channel,
                at=_at(event).isoformat(),
                reason=event.error,
            )
        )
    if changed:
        # ORM bulk UPDATE by primary key: one statement, executed for every changed row.
        await session.execute(
            update(LedgerRow),
            [{"id": r.id, **r.changes()} for r in changed.values()],
        )
    await add_events(session, [(f, None) for f in facts])
    # Recipients of an invitation campaign go on its event's list here, in this
    # transaction, rather than through a consumer of our own `message.sent` facts.
    for event_id, contact_ids in invited.items():
        await record_invitations(session, event_id, contact_ids)
    for campaign_id in campaign_ids:
        await report_progress(session, campaign_id)


async def _apply(
    session: AsyncSession, row: _Row, event: DeliveryChanged
) -> type[MessageFact] | None:
    """The row after one report; the fact to publish when its status changed."""
    status = NEW_STATUS[event.type]
    moment = _at(event)
    if status == "bounced":
        await _bounced(
            session, row, event, moment, complaint=bool(getattr(event, "complaint", False))
        )
    if RANK[status] < RANK.get(row.status, 0) or row.status == status:
        return None
    if status in ("sent", "delivered") and row.sent_at is None:
        row.sent_at = moment
    if status == "delivered":
        row.delivered_at = moment
    if status == "failed":
        row.failed_at, row.error = moment, (event.error or "failed")[:500]
    if status == "suppressed":
        row.error = (event.error or "suppressed by notifications")[:500]
    row.status = status
    return FACTS.get(status)


async def _bounced(
    session: AsyncSession,
    row: _Row,
    event: DeliveryChanged,
    moment: datetime,
    *,
    complaint: bool,
) -> None:
    """A permanent bounce or a complaint suppresses the address here too, at once."""
    channel = "sms" if event.channel == "sms" else "email"
    if complaint and row.complained_at is None:
        row.complained_at = moment
        await add_event(
            session,
            MessageComplained(
                campaign_id=row.campaign_id,
                variant_id=row.variant_id,
                contact_id=row.contact_id,
                channel=channel,
                at=moment.isoformat(),
                reason=event.error,
            ),
        )
    if row.bounced_at is None:
        row.bounced_at = moment
    if complaint or bool(getattr(event, "permanent", True)):
        await suppress(
            session, channel, row.address, reason="complaint" if complaint else "bounced"
        )
        await suppress_pending(session, channel=channel, address=row.address)


async def suppress_pending(
    session: AsyncSession,
    *,
    channel: str,
    address: str | None = None,
    contact_id: str | None = None,
) -> None:
    """Rows not yet handed over, for this address or contact, in every campaign: not sent."""
    query = update(LedgerRow).where(LedgerRow.status.in_(("held", "pending")))
    if address is not None:
        key = normalise(channel, address)
        query = query.where(LedgerRow.address_key == key)
    elif contact_id is not None:
        query = query.where(LedgerRow.contact_id == contact_id)
    else:
        return
    channel_campaigns = select(Campaign.id).where(Campaign.channel == channel)
    await session.execute(
        query.where(LedgerRow.campaign_id.in_(channel_campaigns))
        .values(status="suppressed", error="unsubscribed or suppressed")
        .execution_options(synchronize_session=False)
    )
