"""Tables of campaigns: the campaign, its variants, the per-recipient send ledger, attributed deals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_campaigns.models import Base
from crm_kernel.db import UtcDateTime

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))  # email, sms
    template_id: Mapped[str | None] = mapped_column(String(36))
    # draft, scheduled, sending, paused, sent, cancelled
    status: Mapped[str] = mapped_column(String(12))
    segment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    exclude_segment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    rfm_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    attribution_days: Mapped[int] = mapped_column(Integer, default=30)
    rate_per_second: Mapped[int] = mapped_column(Integer)
    track_opens: Mapped[bool] = mapped_column(Boolean, default=True)
    track_clicks: Mapped[bool] = mapped_column(Boolean, default=True)
    marketing_event_id: Mapped[str | None] = mapped_column(String(36))
    # A/B: share of the audience in the test, the metric, the window; phase none/testing/decided.
    ab_test_percent: Mapped[int] = mapped_column(Integer, default=0)
    ab_metric: Mapped[str] = mapped_column(String(10), default="open")
    ab_window_minutes: Mapped[int] = mapped_column(Integer, default=60)
    ab_phase: Mapped[str] = mapped_column(String(10), default="none")
    ab_decide_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ab_winner_variant_id: Mapped[str | None] = mapped_column(String(36))
    scheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    audience: Mapped[int] = mapped_column(Integer, default=0)
    # The earliest moment the next batch may go (shared by replicas: the rate is global).
    next_batch_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_progress_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


Index("ix_campaigns_status", Campaign.status)


class Variant(Base):
    """One version of the message; content is copied from the template at send start."""

    __tablename__ = "campaign_variants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    template_id: Mapped[str | None] = mapped_column(String(36))
    subject: Mapped[str | None] = mapped_column(String(500))
    body_html: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)


class LedgerRow(Base):
    """One recipient of one campaign: the send ledger (one row per address).

    status: held (A/B rest waiting for the winner) -> pending -> queued (command in
    the outbox) -> sent / delivered / failed / bounced / suppressed; or cancelled.
    """

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_campaign_recipients_contact"),
        UniqueConstraint("campaign_id", "address_key", name="uq_campaign_recipients_address"),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(36))
    contact_id: Mapped[str] = mapped_column(String(36))
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320))
    variant_id: Mapped[str | None] = mapped_column(String(36))
    in_test: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12))
    # The batch that claimed the row (a replica's claim, on SQLite and PostgreSQL alike).
    claim: Mapped[str | None] = mapped_column(String(36))
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Times the sweeper handed a queued row over again for want of a delivery report.
    requeues: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(String(500))
    opens: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    first_opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    first_clicked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    bounced_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    complained_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


Index("ix_campaign_recipients_status", LedgerRow.campaign_id, LedgerRow.status, LedgerRow.id)
Index("ix_campaign_recipients_contact", LedgerRow.contact_id)
# The sweeper's look-up of rows queued too long.
Index("ix_campaign_recipients_queued", LedgerRow.status, LedgerRow.queued_at)


class AttributedDeal(Base):
    """A deal a recipient opened within the campaign's attribution window (last touch)."""

    __tablename__ = "campaign_deals"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36), index=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(10))
    won_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    version: Mapped[int] = mapped_column(Integer)
