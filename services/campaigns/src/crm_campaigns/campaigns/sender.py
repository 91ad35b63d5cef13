"""The sender: claims pending ledger rows in batches, renders them, hands them to notifications.

One transaction per batch: the rows flip from `pending` to `queued` together
with the outbox rows of their commands, so a crash either leaves a row pending
(sent by the next batch) or queued with its command committed (published by the
relay after restart, de-duplicated by notifications through its `key`). No
recipient twice, none skipped. The batch claim is a conditional UPDATE of the
campaign's `next_batch_at` (the rate gate, shared by replicas) and of the rows'
`claim`, with FOR UPDATE SKIP LOCKED on PostgreSQL.
"""

from __future__ import annotations

import logging
import uuid
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
from crm_kernel.contracts.notifications import SendBulkEmail, SendBulkSms
from crm_kernel.db import Database
from crm_kernel.events import IntegrationEvent
from crm_kernel.outbox import add_events

log = logging.getLogger(__name__)


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
        """Hand one batch to notifications; returns (rows claimed, when the next may go)."""
        async with self.db.transaction() as session:
            campaign = await session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "sending":
                return 0, None
            size = max(1, min(self.settings.send_batch_size, campaign.rate_per_second))
            moment = now()
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
                return 0, campaign.next_batch_at
            rows = await self._claim(session, campaign_id, size, moment)
            if not rows:
                return 0, None
            await self.render(session, campaign, rows)
            await report_progress(session, campaign_id)
            return len(rows), next_at

    async def _claim(
        self, session: AsyncSession, campaign_id: str, size: int, moment: datetime
    ) -> list[LedgerRow]:
        claim = str(uuid.uuid4())
        pending = (
            select(LedgerRow.id)
            .where(LedgerRow.campaign_id == campaign_id, LedgerRow.status == "pending")
            .order_by(LedgerRow.id)
            .limit(size)
        )
        if not self.db.is_sqlite:
            pending = pending.with_for_update(skip_locked=True)
        claimed = (
            await session.scalars(
                update(LedgerRow)
                .where(LedgerRow.id.in_(pending.scalar_subquery()))
                .values(status="queued", claim=claim, queued_at=moment)
                .returning(LedgerRow.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        if not claimed:
            return []
        # By primary key: `claim` has no index, and a scan per batch grows with the ledger.
        found = await session.scalars(
            select(LedgerRow).where(LedgerRow.id.in_(claimed)).order_by(LedgerRow.id)
        )
        return list(found.all())

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
        commands: list[IntegrationEvent] = []
        for row in rows:
            contact = contacts.get(row.contact_id)
            reason = _unreachable(contact, campaign.channel)
            if reason or contact is None:
                row.status, row.error = "suppressed", reason
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
                row.status, row.error = "failed", f"rendering failed: {exc}"[:500]
                continue
            key = message_key(campaign.id, row.contact_id)
            if campaign.channel == "sms":
                commands.append(
                    SendBulkSms(
                        key=key,
                        to=row.address,
                        text=message.text,
                        source_type="campaign",
                        source_id=campaign.id,
                        contact_id=row.contact_id,
                    )
                )
                continue
            html = message.html
            if html is not None:
                html = self.links.track_html(
                    html, who, clicks=campaign.track_clicks, opens=campaign.track_opens
                )
            commands.append(
                SendBulkEmail(
                    key=key,
                    to=row.address,
                    subject=message.subject or campaign.name,
                    body_text=message.text,
                    body_html=html,
                    source_type="campaign",
                    source_id=campaign.id,
                    unsubscribe_url=unsubscribe_url,
                    contact_id=row.contact_id,
                )
            )
        await add_events(session, [(c, None) for c in commands])


def _unreachable(contact: Recipient | None, channel: str) -> str | None:
    """Why a snapshotted contact may no longer be messaged (deleted, erased, consent withdrawn)."""
    if contact is None or contact.erased or contact.merged_into or contact.deleted_at:
        return "contact gone"
    consent = contact.consent_email if channel == "email" else contact.consent_sms
    return None if consent else "no consent"
