"""A contact's erasure: never write to their addresses again, and forget what we sent them.

On `crm.contacts.contact.erased` the e-mail and phone go on the suppression
list (reason `erased`; the address itself is kept there, because that is
what lets us refuse a later message to it). Every notification to that contact
(by `contact_id`, or addressed to those addresses) loses its personal data:
recipient -> "erased", subject, bodies, unsubscribe link, provider answers and
attempt details are cleared. Kept: ids, key, channel, category, status,
attempts, timestamps, source, segments and cost, so delivery statistics and
campaign reports still add up. Messages not yet sent become `suppressed`.
Marketing consent rows of the addresses are deleted. In-app notices about
the contact (source = the contact) lose their body, and webhook delivery log
bodies that mention the contact id or addresses are replaced by `{}` (their
metadata, status and attempts stay; a replay then sends `{}`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.consumer import EventContext, Handlers
from crm_kernel.contracts.contacts import ContactErased
from crm_kernel.db import upsert
from crm_notifications.models import (
    Attempt,
    Consent,
    InAppNotice,
    Notification,
    Suppression,
    WebhookDelivery,
)
from crm_notifications.notifications.consent import address_of
from crm_notifications.sms import normalise_phone

ERASED = "erased"
SUPPRESSIONS = Suppression.__table__


async def erase_contact(
    session: AsyncSession, *, contact_id: str, email: str | None, phone: str | None
) -> None:
    now = datetime.now(UTC)
    addresses: list[tuple[str, str]] = []
    if email:
        addresses.append(("email", address_of("email", email)))
    if phone:
        addresses.append(("sms", normalise_phone(phone)))
    for channel, address in addresses:
        await upsert(
            session,
            SUPPRESSIONS,  # type: ignore[arg-type]
            {"channel": channel, "address": address, "reason": ERASED, "created_at": now},
            key=["channel", "address"],
            update=["reason"],
        )
        await session.execute(
            delete(Consent).where(Consent.channel == channel, Consent.address == address)
        )
    await session.execute(
        update(InAppNotice)
        .where(InAppNotice.source_type == "contact", InAppNotice.source_id == contact_id)
        .values(body="")
    )
    mentions = [contact_id, *(address for _, address in addresses)]
    if email:
        mentions.append(email)
    await session.execute(
        update(WebhookDelivery)
        .where(or_(*(WebhookDelivery.body.contains(m, autoescape=True) for m in mentions)))
        .values(body="{}")
    )
    matches = [Notification.contact_id == contact_id]
    for channel, address in addresses:
        matches.append((Notification.channel == channel) & (Notification.recipient == address))
    if email:
        matches.append((Notification.channel == "email") & (Notification.recipient == email))
    ids = list((await session.execute(select(Notification.id).where(or_(*matches)))).scalars())
    if not ids:
        return
    await session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.status.in_(("queued", "sending")))
        .values(status="suppressed", lease_until=None)
    )
    await session.execute(
        update(Notification)
        .where(Notification.id.in_(ids))
        .values(
            recipient=ERASED,
            subject=None,
            body_text="",
            body_html=None,
            unsubscribe_url=None,
            last_error=None,
            updated_at=now,
        )
    )
    await session.execute(
        update(Attempt).where(Attempt.notification_id.in_(ids)).values(detail=None)
    )


def register(handlers: Handlers) -> None:
    @handlers.on(ContactErased)
    async def on_contact_erased(event: ContactErased, ctx: EventContext) -> None:
        await erase_contact(ctx.session, contact_id=event.id, email=event.email, phone=event.phone)
