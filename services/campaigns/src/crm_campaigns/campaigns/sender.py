"""The sender: claims pending ledger rows in batches, renders them, hands them to notifications.

One transaction per batch: the rows flip from `pending` to `queued` together
with the outbox rows of their commands, so a crash either leaves a row pending
(sent by the next batch) or queued with its command committed (published by the
relay after restart, de-duplicated by notifications through its `key`). No
recipient twice, none skipped. The rows are read (FOR UPDATE SKIP LOCKED on
PostgreSQL) and rendered first; then come a conditional UPDATE of the campaign's
`next_batch_at` (the rate gate, shared by replicas) and the claim of the rows
still pending, so the write part of the transaction is short.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import Campaign, LedgerRow, Variant
from crm_campaigns.campaigns.snapshot import VariantSource
from crm_campaigns.campaigns.state import report_progress
from crm_campaigns.common import now
from crm_campaigns.events.invitations import event_context
from crm_campaigns.events.models import MarketingEvent
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.settings import CampaignsSettings
from crm_campaigns.templates.rendering import CompiledTemplate, compile_template, contact_context
from crm_campaigns.templates.service import owner_names
from crm_campaigns.tracking.links import UNSUBSCRIBE, Links
from crm_campaigns.tracking.links import Recipient as LinkRecipient
from crm_kernel.contracts.notifications import BulkEmail, SendBulkSms, bulk_email_commands
from crm_kernel.db import Database
from crm_kernel.events import IntegrationEvent
from crm_kernel.outbox import add_events

log = logging.getLogger(__name__)

# Rendering a batch takes the event loop for a while: every so many rows it lets the
# outbox relay and the consumers of this process run (acks, the next publishes).
YIELD_EVERY = 100


def message_key(campaign_id: str, contact_id: str) -> str:
    """The notifications de-duplication key: one message per campaign and contact, ever."""
    return f"campaign:{campaign_id}:{contact_id}"


@dataclass
class Sender:
    db: Database
    settings: CampaignsSettings
    links: Links
    # Variant content is frozen at send start, so a compiled template stays valid.
    compiled: dict[str, CompiledTemplate] = field(default_factory=dict)

    async def send_batch(self, campaign_id: str) -> tuple[int, datetime | None]:
        """Hand one batch to notifications; returns (rows claimed, when the next may go).

        The rows are read and rendered before the first write: on SQLite that
        write takes the database's one write lock, which the relay and the
        delivery consumer would otherwise wait on for the whole rendering.
        """
        async with self.db.transaction() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "sending":
                return 0, None
            moment = now()
            if campaign.next_batch_at is not None and campaign.next_batch_at > moment:
                return 0, campaign.next_batch_at
            size = max(1, min(self.settings.send_batch_size, campaign.rate_per_second))
            rows = await self._pending(session, campaign_id, size)
            if not rows:
                return 0, None
            rendered = await self.render_rows(session, campaign, rows)
            next_at = moment + timedelta(seconds=size / campaign.rate_per_second)
            gate = await session.execute(
                update(Campaign)
                .where(
                    Campaign.id == campaign_id,
                    Campaign.status == "sending",
                    or_(Campaign.next_batch_at.is_(None), Campaign.next_batch_at <= moment),
                )
                .values(next_batch_at=next_at)
            )
            if not gate.rowcount:  # type: ignore[attr-defined]
                return 0, campaign.next_batch_at  # another replica took this slot
            claimed = await self._claim(session, [r.id for r in rows], moment)
            ended = [
                {"id": row_id, "status": status, "error": error}
                for row_id, (status, error) in rendered.ended.items()
                if row_id in claimed
            ]
            if ended:
                await session.execute(update(LedgerRow), ended)
            await add_events(session, [(c, None) for c in rendered.commands(claimed)])
            await report_progress(session, campaign_id)
            return len(claimed), next_at

    async def _pending(self, session: AsyncSession, campaign_id: str, size: int) -> list[Any]:
        """The next pending rows (on PostgreSQL locked, so other replicas skip them)."""
        found = await session.execute(
            select(LedgerRow.id, LedgerRow.contact_id, LedgerRow.address, LedgerRow.variant_id)
            .where(LedgerRow.campaign_id == campaign_id, LedgerRow.status == "pending")
            .order_by(LedgerRow.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        )
        return list(found.all())

    async def _claim(self, session: AsyncSession, ids: list[int], moment: datetime) -> set[int]:
        """Rows still pending become queued under one claim id; a row changed since it was
        read (suppressed by an unsubscribe, cancelled) is left alone and its message dropped."""
        claimed = await session.scalars(
            update(LedgerRow)
            .where(LedgerRow.id.in_(ids), LedgerRow.status == "pending")
            .values(status="queued", claim=str(uuid.uuid4()), queued_at=moment)
            .returning(LedgerRow.id)
            .execution_options(synchronize_session=False)
        )
        return set(claimed.all())

    async def _template(
        self, session: AsyncSession, variant_id: str, channel: str
    ) -> CompiledTemplate:
        compiled = self.compiled.get(variant_id)
        if compiled is None:
            variant = await session.get(Variant, variant_id)
            if variant is None:
                raise LookupError(f"variant {variant_id} is gone")
            compiled = compile_template(VariantSource(channel, variant))
            self.compiled[variant_id] = compiled
        return compiled

    async def render(
        self, session: AsyncSession, campaign: Campaign, rows: list[LedgerRow]
    ) -> None:
        """Queue the commands of claimed rows (key per campaign and contact); unreachable ones end."""
        rendered = await self.render_rows(session, campaign, rows)
        for row in rows:
            if row.id in rendered.ended:
                row.status, row.error = rendered.ended[row.id]
        await add_events(session, [(c, None) for c in rendered.commands()])

    async def render_rows(
        self, session: AsyncSession, campaign: Campaign, rows: Sequence[Any]
    ) -> Rendered:
        """The command of each row (id, contact_id, address, variant_id), in row order; rows
        whose contact may no longer be messaged, or whose rendering failed, end instead."""
        contacts = {
            c.id: c
            for c in (
                await session.scalars(
                    select(Recipient).where(Recipient.id.in_([r.contact_id for r in rows]))
                )
            ).all()
        }
        owners = await owner_names(session, {c.owner_id for c in contacts.values()})
        invitation = (
            await session.get(MarketingEvent, campaign.marketing_event_id)
            if campaign.marketing_event_id
            else None
        )
        rendered = Rendered(campaign.id)
        for position, row in enumerate(rows):
            if position and position % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            contact = contacts.get(row.contact_id)
            reason = _unreachable(contact, campaign.channel)
            if reason or contact is None:
                rendered.ended[row.id] = ("suppressed", reason)
                continue
            assert row.variant_id is not None, "a pending row has its variant"
            template = await self._template(session, row.variant_id, campaign.channel)
            who = LinkRecipient(campaign.id, row.contact_id, campaign.channel)
            name, email = owners.get(contact.owner_id, (None, None))
            context: dict[str, Any] = contact_context(contact, owner_name=name, owner_email=email)
            context["campaign"] = {"name": campaign.name}
            if invitation is not None:
                context["event"] = event_context(self.settings, invitation, row.contact_id)
            unsubscribe_url = self.links.url(UNSUBSCRIBE, who)
            context["unsubscribe_url"] = unsubscribe_url
            try:
                message = template.render(context)
            except Exception as exc:  # a template that passed validation; never stop the batch
                log.warning("campaign %s: rendering for %s failed", campaign.id, row.contact_id)
                rendered.ended[row.id] = ("failed", f"rendering failed: {exc}"[:500])
                continue
            key = message_key(campaign.id, row.contact_id)
            if campaign.channel == "sms":
                rendered.sms[row.id] = SendBulkSms(
                    key=key,
                    to=row.address,
                    text=message.text,
                    source_type="campaign",
                    source_id=campaign.id,
                    contact_id=row.contact_id,
                )
                continue
            html = message.html
            if html is not None:
                html = self.links.track_html(
                    html, who, clicks=campaign.track_clicks, opens=campaign.track_opens
                )
            rendered.emails[row.id] = BulkEmail(
                key=key,
                to=row.address,
                subject=message.subject or campaign.name,
                body_text=message.text,
                body_html=html,
                unsubscribe_url=unsubscribe_url,
                contact_id=row.contact_id,
            )
        return rendered


@dataclass
class Rendered:
    """A batch rendered: the message per row id, and the rows that end instead (status, error)."""

    campaign_id: str
    sms: dict[int, SendBulkSms] = field(default_factory=dict)
    emails: dict[int, BulkEmail] = field(default_factory=dict)
    ended: dict[int, tuple[str, str | None]] = field(default_factory=dict)

    def commands(self, rows: Container[int] | None = None) -> list[IntegrationEvent]:
        """The commands for `rows` (default all): an SMS each; the e-mails in as few
        `SendBulkEmails` as fit a NATS message (one stream write for many recipients)."""
        sms = [c for row_id, c in self.sms.items() if rows is None or row_id in rows]
        emails = [e for row_id, e in self.emails.items() if rows is None or row_id in rows]
        bulk = bulk_email_commands(emails, source_type="campaign", source_id=self.campaign_id)
        return [*sms, *bulk]


def _unreachable(contact: Recipient | None, channel: str) -> str | None:
    """Why a snapshotted contact may no longer be messaged (deleted, erased, consent withdrawn)."""
    if contact is None or contact.erased or contact.merged_into or contact.deleted_at:
        return "contact gone"
    consent = contact.consent_email if channel == "email" else contact.consent_sms
    return None if consent else "no consent"
