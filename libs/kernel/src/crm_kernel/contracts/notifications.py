"""Commands addressed to the notifications service."""

from __future__ import annotations

from crm_kernel.events import IntegrationEvent


class SendEmail(IntegrationEvent):
    """Send one e-mail; `key` makes a redelivered command a no-op."""

    type = "crm.notifications.send.email"
    is_command = True

    key: str
    to: str
    subject: str
    body_text: str
    body_html: str | None = None
    category: str = "transactional"


class SendSms(IntegrationEvent):
    type = "crm.notifications.send.sms"
    is_command = True

    key: str
    to: str
    text: str
    category: str = "transactional"


CONTRACTS = (SendEmail, SendSms)
