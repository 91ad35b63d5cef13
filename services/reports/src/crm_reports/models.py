"""Read models of the reports service, built only from events."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, Float, Index, Integer, MetaData, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_kernel.db import UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData()


class ContactFact(Base):
    """The newest state of each contact the base has had: owner, lifecycle stage, trash."""

    __tablename__ = "rm_contacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lifecycle_stage: Mapped[str | None] = mapped_column(String(40))
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_rm_contacts_owner_created", "owner_id", "created_at"),)


class DealFact(Base):
    """The newest state of each deal (by its version): owner, stage, status, money, dates."""

    __tablename__ = "rm_deals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36))
    pipeline_id: Mapped[str] = mapped_column(String(36))
    stage_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[str | None] = mapped_column(String(36))
    source: Mapped[str | None] = mapped_column(String(40))
    source_campaign_id: Mapped[str | None] = mapped_column(String(36))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    stage_entered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Lead-mix band of the amount, e.g. "RUB:4" (10,000-99,999 RUB); "none" without an amount.
    amount_band: Mapped[str] = mapped_column(String(12), default="none")
    # Days from creation to win, for won deals (exact median cycles read in index order).
    cycle_days: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_rm_deals_owner_status", "owner_id", "status"),
        # Covers what a period's `managers` reads of the deals closed in it (index only).
        Index(
            "ix_rm_deals_closed",
            "status",
            "closed_at",
            "owner_id",
            "pipeline_id",
            "source",
            "amount_band",
            "cycle_days",
            "currency",
            "amount",
        ),
        Index("ix_rm_deals_contact", "contact_id"),
        Index("ix_rm_deals_created", "created_at"),
        # Exact median cycles walk one owner's wins in cycle order (closed_at: a period's).
        Index(
            "ix_rm_deals_owner_status_cycle",
            "owner_id",
            "status",
            "cycle_days",
            "closed_at",
            "pipeline_id",
        ),
    )


class StageFact(Base):
    """Each pipeline stage's win probability, from pipeline events (for weighted amounts)."""

    __tablename__ = "rm_stages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[int | None] = mapped_column(Integer)
    probability: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    kind: Mapped[str] = mapped_column(String(10))
    version: Mapped[int] = mapped_column(Integer)


class StageStay(Base):
    """One stay of a deal in a stage: entered, and left (None while it is there).

    Keyed by deal, stage and entry time, so the event that opens a stay and the
    one that closes it write the same row in whichever order they arrive.
    """

    __tablename__ = "rm_stage_stays"

    deal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36))
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The deal's current owner and the stay's length in days (finished stays): exact
    # medians are read in index order instead of ranking every stay.
    owner_id: Mapped[str | None] = mapped_column(String(36))
    days: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_rm_stage_stays_pipeline_entered", "pipeline_id", "entered_at"),
        # Exact medians walk a stage's finished stays in length order (entered_at: a period's).
        Index(
            "ix_rm_stage_stays_days", "pipeline_id", "stage_id", "days", "entered_at", "owner_id"
        ),
        # A period's medians read its finished stays per stage from this index alone.
        Index(
            "ix_rm_stage_stays_stage_entered",
            "pipeline_id",
            "stage_id",
            "entered_at",
            "days",
            "owner_id",
        ),
    )


class ContactStage(Base):
    """Each version of a contact's lifecycle stage (and whether it was in the trash), for `lifecycle`."""

    __tablename__ = "rm_contact_stages"

    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    owner_id: Mapped[str] = mapped_column(String(36))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(40))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class ActivityFact(Base):
    """The newest state of each manual activity: type, author, when."""

    __tablename__ = "rm_activities"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    deal_id: Mapped[str | None] = mapped_column(String(36))
    activity_type: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[str] = mapped_column(String(36))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_rm_activities_author_occurred", "author_id", "occurred_at"),)


class TaskFact(Base):
    """The newest state of each task: assignee, due time, status."""

    __tablename__ = "rm_tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    assignee_id: Mapped[str] = mapped_column(String(36))
    contact_id: Mapped[str | None] = mapped_column(String(36))
    deal_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_rm_tasks_assignee_status_due", "assignee_id", "status", "due_at"),)


class RequestFact(Base):
    """The newest state of each client request: assignee, status, opened and resolved times."""

    __tablename__ = "rm_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    assignee_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)


class LeadFact(Base):
    """Each lead received: its source and the owner it was given."""

    __tablename__ = "rm_leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    owner_id: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(40))
    is_new_contact: Mapped[bool] = mapped_column(Boolean)
    utm_campaign: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_rm_leads_owner_received", "owner_id", "received_at"),)


class CampaignFact(Base):
    """The newest state of each campaign: status, cost, attribution window, counters."""

    __tablename__ = "rm_campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    cost: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    attribution_days: Mapped[int] = mapped_column(Integer)
    marketing_event_id: Mapped[str | None] = mapped_column(String(36))
    audience: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)


class CampaignVariant(Base):
    """A campaign's A/B variants (names), newest campaign version wins."""

    __tablename__ = "rm_campaign_variants"

    campaign_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    variant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)


class MessageFactRow(Base):
    """One recipient's fact of one kind in a campaign (sent, delivered, opened...).

    Keyed by campaign, contact and kind: the row itself is the unique count;
    `total` counts every occurrence (repeat opens), `first_at` keeps the earliest
    whatever the arrival order.
    """

    __tablename__ = "rm_message_facts"

    campaign_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    variant_id: Mapped[str | None] = mapped_column(String(36))
    first_at: Mapped[datetime] = mapped_column(UtcDateTime())
    total: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_rm_message_facts_contact", "contact_id", "kind"),)


class MarketingEventFact(Base):
    """The newest state of each marketing event with its own counters."""

    __tablename__ = "rm_marketing_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    invited: Mapped[int] = mapped_column(Integer)
    registered: Mapped[int] = mapped_column(Integer)
    attended: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)


class Participant(Base):
    """A contact invited to, registered for or attended a marketing event (one row per step)."""

    __tablename__ = "rm_participants"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    step: Mapped[str] = mapped_column(String(12), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class DealDay(Base):
    """Incremental aggregate of the deal read model per UTC day, owner, pipeline and currency.

    Kept by subtracting a deal's old contribution and adding its new one each time
    its newest state changes (`crm_reports.aggregates`), so it always equals a
    GROUP BY over `rm_deals`.
    """

    __tablename__ = "rm_deal_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    created: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)
    won_amount: Mapped[Decimal] = mapped_column(Numeric(20, 4), default=0)


class DealTotal(Base):
    """`rm_deal_days` summed over all time: deals created, won, lost and the amount won."""

    __tablename__ = "rm_deal_totals"

    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    created: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)
    won_amount: Mapped[Decimal] = mapped_column(Numeric(20, 4), default=0)


class DealCycle(Base):
    """Won deals per owner, pipeline and bucket of days to win (`stats.BOUNDS`), all time.

    Locates an owner's exact median cycle: only that bucket's deals are then read.
    """

    __tablename__ = "rm_deal_cycles"

    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    won: Mapped[int] = mapped_column(Integer, default=0)


class DealMix(Base):
    """Deals won and lost per owner, pipeline, lead source and amount band, all time (lead mix)."""

    __tablename__ = "rm_deal_mix"

    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    amount_band: Mapped[str] = mapped_column(String(12), primary_key=True)
    won: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)


class FunnelFact(Base):
    """The all-time funnel per pipeline, stage and owner, kept incrementally like `rm_deal_days`.

    Per (deal, stage) pair: entered, moved on (a finished stay), won (the deal is
    won), onward (a later stay reached a non-lost stage further on); per stay:
    finished stays and their total length in microseconds (exact averages).
    """

    __tablename__ = "rm_funnel_facts"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    entered: Mapped[int] = mapped_column(Integer, default=0)
    moved_on: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    onward: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[int] = mapped_column(Integer, default=0)
    stay_microseconds: Mapped[int] = mapped_column(BigInteger, default=0)


class StayLength(Base):
    """Finished stays per pipeline, stage, owner and length bucket (`stats.BOUNDS`).

    Kept with `rm_funnel_facts`; an exact median finds its bucket here and reads
    only that bucket's stays in index order.
    """

    __tablename__ = "rm_stay_lengths"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    stays: Mapped[int] = mapped_column(Integer, default=0)


class FunnelDay(Base):
    """The funnel per UTC day of entry, pipeline, stage and owner: a period's funnel sums days.

    Per stay: `stays`, `finished` (it was left), `won` (its deal is won), `onward`
    (a later stay of the deal reached a non-lost stage further on) and the
    finished stays' length in microseconds. `previous_day` is the entry day of
    the same deal's previous stay in the same stage (`NO_PREVIOUS` for a first
    entry): a deal counts once per stage and period, by its first stay in the
    period, which is the one whose previous stay came before the period.
    """

    __tablename__ = "rm_funnel_days"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    previous_day: Mapped[date] = mapped_column(Date, primary_key=True)
    stays: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    onward: Mapped[int] = mapped_column(Integer, default=0)
    stay_microseconds: Mapped[int] = mapped_column(BigInteger, default=0)


class DealMonth(Base):
    """`rm_deal_days` summed per UTC month (`month`: its first day): a long period sums
    its whole months here and only its other whole days there."""

    __tablename__ = "rm_deal_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    created: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)
    won_amount: Mapped[Decimal] = mapped_column(Numeric(20, 4), default=0)


class DealMixMonth(Base):
    """`rm_deal_mix` per UTC month of closing: a period's lead mix over its whole months."""

    __tablename__ = "rm_deal_mix_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    amount_band: Mapped[str] = mapped_column(String(12), primary_key=True)
    won: Mapped[int] = mapped_column(Integer, default=0)
    lost: Mapped[int] = mapped_column(Integer, default=0)


class FunnelMonth(Base):
    """`rm_funnel_days` summed per UTC month of entry (`month`: its first day), with the same
    `previous_day` (a day: whether the previous stay came before a period is decided
    against the period's first day, as for the day rows)."""

    __tablename__ = "rm_funnel_months"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    previous_day: Mapped[date] = mapped_column(Date, primary_key=True)
    stays: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    onward: Mapped[int] = mapped_column(Integer, default=0)
    stay_microseconds: Mapped[int] = mapped_column(BigInteger, default=0)


class StayLengthDay(Base):
    """Finished stays per pipeline, UTC day of entry, stage and length bucket (`stats.BOUNDS`),
    over every owner; `rm_stay_length_months` per UTC month.

    A period's exact median for a caller who sees every owner: these (plus the
    stays of the partial days) say which bucket holds the middle rank(s) and how
    many come before; only that bucket's stays are then read. Without the owner
    (fifty times fewer rows); a caller seeing only some owners reads the stays.
    """

    __tablename__ = "rm_stay_length_days"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    stays: Mapped[int] = mapped_column(Integer, default=0)


class StayLengthMonth(Base):
    """`rm_stay_length_days` summed per UTC month of entry (`month`: its first day)."""

    __tablename__ = "rm_stay_length_months"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    stays: Mapped[int] = mapped_column(Integer, default=0)


class StateBase(DeclarativeBase):
    """Tables of the service's own jobs: kept across a rebuild (they record what was sent)."""

    metadata = MetaData()


class ContactScore(StateBase):
    """The last scores published for each contact (`crm.reports.contact.scored` only on change)."""

    __tablename__ = "contact_scores"

    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recency: Mapped[int] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary: Mapped[int] = mapped_column(Integer)
    rfm_group: Mapped[str] = mapped_column(String(20))
    revenue_to_date: Mapped[str] = mapped_column(String(40))
    predicted_clv: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    scored_at: Mapped[datetime] = mapped_column(UtcDateTime())


class JobClaim(StateBase):
    """A periodic job's run, claimed once by one replica: (job, slot) is unique."""

    __tablename__ = "job_claims"

    job: Mapped[str] = mapped_column(String(60), primary_key=True)
    slot: Mapped[str] = mapped_column(String(120), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
