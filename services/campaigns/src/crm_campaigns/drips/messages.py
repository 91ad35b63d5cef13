"""One tracked message to one contact outside a campaign (a drip step, an event invitation).

Consent, address and suppression are checked here. An e-mail gets a row in the
campaigns' send ledger under the caller's tracking id (a UUID no campaign has),
so the service's open pixel, click links and one-click unsubscribe work for it
exactly as for a campaign's; SMS has no tracking.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import LedgerRow
from crm_campaigns.recipients.addresses import normalise
from crm_campaigns.recipients.models import Recipient, Suppression
from crm_campaigns.templates.rendering import CompiledTemplate
from crm_campaigns.tracking.links import UNSUBSCRIBE, Links
from crm_campaigns.tracking.links import Recipient as LinkRecipient
from crm_kernel.contracts.notifications import SendBulkEmail, SendBulkSms
from crm_kernel.db import insert_ignoring_duplicates
from crm_kernel.outbox import add_event

_LEDGER = cast(Table, LedgerRow.__table__)
_TRACK_NAMESPACE = uuid.UUID("5b0f5c52-4f0e-4d55-9a53-6c1e0d7a2a11")


def tracking_id(name: str) -> str:
    """The campaign id a family of messages carries in tracking links and the ledger."""
    return str(uuid.uuid5(_TRACK_NAMESPACE, name))


@dataclass(frozen=True)
class Message:
    key: str  # the notifications de-duplication key
    track_id: str
    source_type: str
    source_id: str
    fallback_subject: str


async def queue_message(
    session: AsyncSession,
    links: Links,
    *,
    contact: Recipient,
    template: CompiledTemplate,
    context: dict[str, Any],
    message: Message,
    now: datetime,
) -> str | None:
    """Queue the message in the caller's transaction: None, or why it was not sent."""
    channel = template.channel
    address = contact.email if channel == "email" else contact.phone
    consent = contact.consent_email if channel == "email" else contact.consent_sms
    if not consent:
        return "no_consent"
    address_key = normalise(channel, address)
    if address is None or address_key is None:
        return "no_address"
    if await session.get(Suppression, (channel, address_key)) is not None:
        return "suppressed"
    who = LinkRecipient(message.track_id, contact.id, channel)
    unsubscribe_url = links.url(UNSUBSCRIBE, who)
    rendered = template.render({**context, "unsubscribe_url": unsubscribe_url})
    source = {
        "key": message.key,
        "to": address,
        "source_type": message.source_type,
        "source_id": message.source_id,
        "contact_id": contact.id,
    }
    command: SendBulkEmail | SendBulkSms
    if channel == "sms":
        command = SendBulkSms(text=rendered.text, **source)
    else:
        row = {
            "campaign_id": message.track_id,
            "contact_id": contact.id,
            "address": address,
            "address_key": address_key,
            "in_test": False,
            "status": "queued",
            "queued_at": now,
            "opens": 0,
            "clicks": 0,
        }
        await insert_ignoring_duplicates(session, _LEDGER, [row])
        listed = await session.scalar(
            select(LedgerRow.id).where(
                LedgerRow.campaign_id == message.track_id, LedgerRow.contact_id == contact.id
            )
        )
        if listed is None:
            return "duplicate_address"  # another contact with this address got it
        html = rendered.html
        if html is not None:
            html = links.track_html(html, who, clicks=True, opens=True)
        command = SendBulkEmail(
            subject=rendered.subject or message.fallback_subject,
            body_text=rendered.text,
            body_html=html,
            unsubscribe_url=unsubscribe_url,
            **source,
        )
    await add_event(session, command, subject=message.source_id)
    return None
