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
    # The contact addressed, when known: consent and preferences are checked on it.
    contact_id: str | None = None


class SendSms(IntegrationEvent):
    type = "crm.notifications.send.sms"
    is_command = True

    key: str
    to: str
    text: str
    category: str = "transactional"
    source_type: str | None = None
    source_id: str | None = None
    contact_id: str | None = None


class SendBulkEmail(SendEmail):
    """A campaign's e-mail: its own stream and worker pool, so it never delays a one-off."""

    type = "crm.notifications.bulk.email"
    work_stream: ClassVar[str] = "CRM_NOTIFICATIONS_BULK_COMMANDS"
    category: str = "bulk"


class SendBulkSms(SendSms):
    """A campaign's SMS: the bulk stream and worker pool, like `SendBulkEmail`."""

    type = "crm.notifications.bulk.sms"
    work_stream: ClassVar[str] = "CRM_NOTIFICATIONS_BULK_COMMANDS"
    category: str = "bulk"


class SendInApp(IntegrationEvent):
    """A notice for staff, shown in the app: to one user, or to every active user of a role."""

    type = "crm.notifications.send.in_app"
    is_command = True

    key: str
    user_id: str | None = None
    role: str | None = None
    title: str
    body: str = ""
    # A path in the web app the notice links to, e.g. /deals/<id>.
    link: str | None = None
    category: str = "system"
    source_type: str | None = None
    source_id: str | None = None


class SendWebhook(IntegrationEvent):
    """Deliver one payload to the admin-managed webhook subscriptions matching `event_type`."""

    type = "crm.notifications.send.webhook"
    is_command = True

    key: str
    event_type: str
    payload: dict[str, object]


class InAppNoticeCreated(IntegrationEvent):
    """A notice was stored for `user_id`; the gateway's live stream forwards it to them."""

    type = "crm.notifications.in_app.created"
    id: str
    user_id: str
    title: str
    body: str
    link: str | None = None
    category: str
    created_at: str


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
    contact_id: str | None = None
    error: str | None = None
    at: str


class DeliverySent(DeliveryChanged):
    type = "crm.notifications.delivery.sent"


class DeliveryFailed(DeliveryChanged):
    type = "crm.notifications.delivery.failed"


class DeliverySuppressed(DeliveryChanged):
    type = "crm.notifications.delivery.suppressed"


class DeliveryDelivered(DeliveryChanged):
    """The provider confirmed delivery to the handset or mailbox (SMS status callback)."""

    type = "crm.notifications.delivery.delivered"


class DeliveryBounced(DeliveryChanged):
    """A bounce or complaint arrived after sending (DSN, provider webhook).

    `error` holds the reason; `complaint` True for a spam complaint. The address is
    suppressed when the bounce is permanent or a complaint.
    """

    type = "crm.notifications.delivery.bounced"
    permanent: bool = True
    complaint: bool = False


CONTRACTS = (
    SendEmail,
    SendSms,
    SendBulkEmail,
    SendBulkSms,
    SendInApp,
    SendWebhook,
    InAppNoticeCreated,
    DeliverySent,
    DeliveryFailed,
    DeliverySuppressed,
    DeliveryDelivered,
    DeliveryBounced,
)
