"""Tables of drip sequences: the sequences, each contact's enrolment and position, and the sends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_campaigns.models import Base
from crm_kernel.db import UtcDateTime


class DripSequence(Base):
    __tablename__ = "drip_sequences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10))  # draft, active, paused
    # segment_joined, lead_received, deal_stage_entered; with its segment or stage.
    trigger: Mapped[str] = mapped_column(String(20))
    trigger_segment_id: Mapped[str | None] = mapped_column(String(36))
    trigger_stage_id: Mapped[str | None] = mapped_column(String(36))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # segment_joined: when the members present at activation were recorded (never enrolled).
    segment_baseline_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __mapper_args__ = {"version_id_col": version}


class DripEnrolment(Base):
    """One contact in one sequence (once ever): the step it is at and when that step is due."""

    __tablename__ = "drip_enrolments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("drip_sequences.id", ondelete="CASCADE")
    )
    contact_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(10))  # active, completed, stopped
    step: Mapped[int] = mapped_column(Integer)
    # When the contact reached the current step (waits and branches count from it).
    step_started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    trigger_ref: Mapped[str | None] = mapped_column(String(100))
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("sequence_id", "contact_id", name="uq_drip_enrolments_contact"),
        Index("ix_drip_enrolments_due", "status", "due_at"),
    )


class DripSend(Base):
    """What a send step did for one enrolment: queued (with its key) or skipped, and why."""

    __tablename__ = "drip_sends"

    enrolment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("drip_enrolments.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    sequence_id: Mapped[str] = mapped_column(String(36), index=True)
    contact_id: Mapped[str] = mapped_column(String(36))
    channel: Mapped[str] = mapped_column(String(10))
    template_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10))  # queued, skipped
    reason: Mapped[str | None] = mapped_column(String(40))  # why skipped
    # The campaign id its tracking links and ledger row carry (one per sequence and step).
    track_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_drip_sends_track", "track_id", "contact_id"),)


class DripSegmentMember(Base):
    """A contact seen in a segment_joined sequence's segment: joining is being new here."""

    __tablename__ = "drip_segment_members"

    sequence_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("drip_sequences.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
