"""Send commands from other services, delivered through the configured channels.

Interim behaviour of the foundation: the message row and the send happen in
the consumer's transaction; a failed send rolls back and is retried with
back-off. The notifications issue replaces this with a recorded state machine
(queued -> sending -> sent) so the provider call sits outside the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from crm_kernel.consumer import EventContext, Handlers
from crm_kernel.contracts.notifications import SendEmail, SendSms
from crm_kernel.ids import new_id
from crm_notifications.channels.messages import OutgoingEmail, OutgoingSms
from crm_notifications.channels.select import Mailer, SmsSender
from crm_notifications.models import Message


def build_handlers(mailer: Mailer, sms: SmsSender) -> Handlers:
    handlers = Handlers("notifications")

    async def already_sent(ctx: EventContext, key: str) -> bool:
        found = await ctx.session.execute(select(Message.id).where(Message.key == key))
        return found.first() is not None

    def record(ctx: EventContext, *, key: str, channel: str, to: str, provider_id: str) -> None:
        ctx.session.add(
            Message(
                id=str(new_id()),
                key=key,
                channel=channel,
                recipient=to,
                status="sent",
                provider_id=provider_id,
                created_at=datetime.now(UTC),
            )
        )

    @handlers.on(SendEmail)
    async def on_send_email(command: SendEmail, ctx: EventContext) -> None:
        if await already_sent(ctx, command.key):
            return
        provider_id = await mailer.send(
            OutgoingEmail(
                key=command.key,
                to=command.to,
                subject=command.subject,
                body_text=command.body_text,
                body_html=command.body_html,
            )
        )
        record(ctx, key=command.key, channel="email", to=command.to, provider_id=provider_id)

    @handlers.on(SendSms)
    async def on_send_sms(command: SendSms, ctx: EventContext) -> None:
        if await already_sent(ctx, command.key):
            return
        provider_id = await sms.send(OutgoingSms(key=command.key, to=command.to, text=command.text))
        record(ctx, key=command.key, channel="sms", to=command.to, provider_id=provider_id)

    return handlers
