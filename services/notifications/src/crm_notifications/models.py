"""The notifications service's database tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kernel.db import UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class Notification(Base):
    """One message to one recipient, and where it stands.

    queued -> sending -> sent, or back to queued (transient failure, with a
    later `next_attempt_at`), or failed / suppressed. `key` is unique: the same
    command twice is one notification.
    """

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(998))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(2000))
    source_type: Mapped[str | None] = mapped_column(String(40))
    source_id: Mapped[str | None] = mapped_column(String(36))
    # The contact addressed, when known: carried on delivery events, and how erasure finds it.
    contact_id: Mapped[str | None] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Sends that may have happened twice: a crash between the provider's
    # acceptance and our record (the unavoidable window), counted.
    uncertain_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The provider's id for the message (SMTP Message-ID, SMS sid): callbacks find it by this.
    provider_id: Mapped[str | None] = mapped_column(String(200), index=True)
    segments: Mapped[int | None] = mapped_column(Integer)
    cost_estimate: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_notifications_due", "status", "category", "next_attempt_at"),
        Index("ix_notifications_recipient", "recipient"),
    )


class Attempt(Base):
    """One try at the provider and what it answered."""

    __tablename__ = "notification_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)


class Suppression(Base):
    """An address never to write to again on a channel (hard bounce, complaint, unsubscribe, erasure)."""

    __tablename__ = "suppressions"

    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Consent(Base):
    """Marketing consent per address and channel, kept from contact events (newest change wins)."""

    __tablename__ = "consents"

    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class InAppNotice(Base):
    """A notice for one staff user, shown in the app until read."""

    __tablename__ = "in_app_notices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The command's key: the same command twice is one notice per user.
    key: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String(36))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    category: Mapped[str] = mapped_column(String(40))
    source_type: Mapped[str | None] = mapped_column(String(40))
    source_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("key", "user_id", name="uq_in_app_notices_key_user"),
        Index("ix_in_app_notices_user", "user_id", "created_at"),
    )


class WebhookSubscription(Base):
    """An integration's endpoint: the event types it wants (wildcards) and the secret signing them."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    # Kept as given: HMAC needs the secret itself. Shown once, at creation.
    secret: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """One event to one subscription: pending -> sending -> succeeded, or pending again, or failed."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    # The exact JSON body POSTed (signed afresh at each attempt with its timestamp).
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_log", "subscription_id", "created_at"),
    )


class WebhookAttempt(Base):
    """One POST of a delivery and what the endpoint answered."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class Preference(Base):
    """A contact's own choices: categories refused per channel, and SMS quiet hours."""

    __tablename__ = "notification_preferences"

    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # {"email": ["bulk", "reminder"], "sms": ["bulk"]}: categories this contact refuses.
    opt_out: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    # IANA zone, e.g. Europe/Moscow; unset: guessed from the phone number when unambiguous.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Local "HH:MM" window in which SMS wait (may wrap midnight, e.g. 21:00-09:00).
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
