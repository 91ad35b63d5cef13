"""Invitation e-mails (or SMS) the event sends itself, with each contact's registration link.

Key `event:<event>:<contact>` (notifications sends it once, however often it is
queued); tracking and unsubscribe links work through the send ledger under the
event's tracking id (see `crm_campaigns.drips.messages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.drips.messages import Message, queue_message, tracking_id
from crm_campaigns.events.links import registration_url
from crm_campaigns.events.models import MarketingEvent
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.templates.models import Template
from crm_campaigns.templates.rendering import compile_template, contact_context
from crm_campaigns.templates.service import owner_names
from crm_campaigns.tracking.links import Links
from crm_kernel.settings import ServiceSettings


def event_context(
    settings: ServiceSettings, event: MarketingEvent, contact_id: str
) -> dict[str, Any]:
    """The `event` variable of an invitation template, for one contact."""
    return {
        "name": event.name,
        "kind": event.kind,
        "starts_at": event.starts_at.isoformat(),
        "place": event.place or "",
        "registration_url": registration_url(settings, event.id, contact_id),
    }


async def send_invitations(
    session: AsyncSession,
    settings: ServiceSettings,
    *,
    event: MarketingEvent,
    contacts: Sequence[Recipient],
    template: Template,
    now: datetime,
) -> list[str]:
    """Queue one invitation per contact; returns those sent to (the rest lack consent or address)."""
    compiled = compile_template(template)
    links = Links(settings)
    owners = await owner_names(session, {c.owner_id for c in contacts})
    track = tracking_id(f"event:{event.id}")
    sent: list[str] = []
    for contact in contacts:
        name, email = owners.get(contact.owner_id, (None, None))
        context = contact_context(contact, owner_name=name, owner_email=email)
        context["campaign"] = {"name": event.name}
        context["event"] = event_context(settings, event, contact.id)
        message = Message(
            key=f"event:{event.id}:{contact.id}",
            track_id=track,
            source_type="marketing_event",
            source_id=event.id,
            fallback_subject=event.name,
        )
        reason = await queue_message(
            session,
            links,
            contact=contact,
            template=compiled,
            context=context,
            message=message,
            now=now,
        )
        if reason is None:
            sent.append(contact.id)
    return sent
