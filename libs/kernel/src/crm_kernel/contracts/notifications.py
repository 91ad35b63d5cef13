"""Commands addressed to the notifications service, and the delivery events it publishes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

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


class BulkEmail(BaseModel):
    """One recipient's e-mail inside `SendBulkEmails` (the fields of `SendEmail` that vary)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    key: str
    to: str
    subject: str
    body_text: str
    body_html: str | None = None
    unsubscribe_url: str | None = None
    contact_id: str | None = None


class SendBulkEmails(IntegrationEvent):
    """Many campaign e-mails in one command, on the bulk stream like `SendBulkEmail`.

    One stream write, one fsync and one ack serve the lot instead of one per
    recipient (JetStream fsyncs every message); each e-mail keeps its own `key`,
    so a repeated command is still a no-op per recipient. The publisher keeps a
    command under NATS's payload limit (`MAX_BULK_EMAILS_BYTES`).
    """

    type = "crm.notifications.bulk.emails"
    is_command = True
    work_stream: ClassVar[str] = "CRM_NOTIFICATIONS_BULK_COMMANDS"

    source_type: str | None = None
    source_id: str | None = None
    emails: list[BulkEmail]


# The serialised e-mails one `SendBulkEmails` may carry: half of NATS's default
# 1 MiB `max_payload`, leaving ample room for the envelope.
MAX_BULK_EMAILS_BYTES = 512 * 1024


def bulk_email_commands(
    emails: Iterable[BulkEmail],
    *,
    source_type: str | None = None,
    source_id: str | None = None,
    max_bytes: int = MAX_BULK_EMAILS_BYTES,
) -> list[SendBulkEmails]:
    """`emails` in as few commands as fit NATS's payload limit, in order (each at least one)."""
    commands: list[SendBulkEmails] = []
    chunk: list[BulkEmail] = []
    size = 0
    for email in emails:
        length = len(email.model_dump_json())
        if chunk and size + length > max_bytes:
            commands.append(
                SendBulkEmails(source_type=source_type, source_id=source_id, emails=chunk)
            )
            chunk, size = [], 0
        chunk.append(email)
        size += length
    if chunk:
        commands.append(SendBulkEmails(source_type=source_type, source_id=source_id, emails=chunk))
    return commands


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


class DeliveriesChanged(IntegrationEvent):
    """Where many bulk (campaign) notifications stand: one event per recorded batch.

    A campaign of 100,000 recipients would otherwise bring 100,000 events, each an
    outbox row, an fsynced JetStream write and a delivery to every consumer.
    Transactional messages, bounces and provider receipts keep their single
    events; each delivery here reads as the single event of its status (`events`).
    """

    type = "crm.notifications.delivery.batch"

    # Each with the `status` that names its single event.
    deliveries: list[DeliveryChanged]

    def events(self) -> list[DeliveryChanged]:
        """Each delivery as the single event of its status (sent, failed, suppressed)."""
        return [
            SINGLE_EVENTS[d.status].model_validate(d.model_dump())
            for d in self.deliveries
            if d.status in SINGLE_EVENTS
        ]


# The single event of each status a batch may report.
SINGLE_EVENTS: dict[str, type[DeliveryChanged]] = {
    "sent": DeliverySent,
    "failed": DeliveryFailed,
    "suppressed": DeliverySuppressed,
}

CONTRACTS = (
    SendEmail,
    SendSms,
    SendBulkEmail,
    SendBulkEmails,
    SendBulkSms,
    SendInApp,
    SendWebhook,
    InAppNoticeCreated,
    DeliverySent,
    DeliveryFailed,
    DeliverySuppressed,
    DeliveryDelivered,
    DeliveryBounced,
    DeliveriesChanged,
)
