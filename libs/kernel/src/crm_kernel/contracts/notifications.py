"""Commands addressed to the notifications service, and the delivery events it publishes."""

from __future__ import annotations

from typing import ClassVar

from crm_kernel.events import IntegrationEvent


class SendEmail(IntegrationEvent):
    """Send one e-mail; `key` makes a repeated command a no-op (e.g. the source event id)."""

    type = "crm.notifications.send.email"
    is_command = True

    key: str
    to: str
    subject: str
    body_text: str
    body_html: str | None = None
    category: str = "transactional"
    # What caused it, for the timeline and reports (deal, task, campaign ...).
    source_type: str | None = None
    source_id: str | None = None
    # A signed one-click unsubscribe link; adds List-Unsubscribe headers.
    unsubscribe_url: str | None = None


class SendSms(IntegrationEvent):
    type = "crm.notifications.send.sms"
    is_command = True

    key: str
    to: str
    text: str
    category: str = "transactional"
    source_type: str | None = None
    source_id: str | None = None


class SendBulkEmail(SendEmail):
    """A campaign's e-mail: its own stream and worker pool, so it never delays a one-off."""

    type = "crm.notifications.bulk.email"
    work_stream: ClassVar[str] = "CRM_NOTIFICATIONS_BULK_COMMANDS"
    category: str = "bulk"


class DeliveryChanged(IntegrationEvent):
    """Where a notification stands; carries its source for the timeline and reports."""

    notification_id: str
    key: str
    channel: str
    recipient: str
    status: str
    attempts: int
    source_type: str | None = None
    source_id: str | None = None
    error: str | None = None
    at: str


class DeliverySent(DeliveryChanged):
    type = "crm.notifications.delivery.sent"


class DeliveryFailed(DeliveryChanged):
    type = "crm.notifications.delivery.failed"


class DeliverySuppressed(DeliveryChanged):
    type = "crm.notifications.delivery.suppressed"


CONTRACTS = (SendEmail, SendSms, SendBulkEmail, DeliverySent, DeliveryFailed, DeliverySuppressed)
