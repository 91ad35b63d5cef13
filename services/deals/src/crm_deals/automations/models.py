"""Automation rules, their runs (one per rule and stay in a stage), and the scheduler's lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_deals.models import Base
from crm_kernel.db import UtcDateTime


class Automation(Base):
    """A rule on a stage: what to do when a deal enters it (or stays too long)."""

    __tablename__ = "automations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pipeline_id: Mapped[str] = mapped_column(String(36), ForeignKey("pipelines.id"))
    stage_id: Mapped[str] = mapped_column(String(36), ForeignKey("stages.id"))
    # create_task, send_email, send_sms, notify, stalled; `params` holds the rest.
    action: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean)
    created_by: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_automations_stage", "stage_id", "active"),)


class AutomationRun(Base):
    """A rule ran for one stay of a deal in its stage: the key that makes it run once.

    Written in the same transaction as the commands or event it produced, so
    a redelivered stage event (or a second scheduler) finds it and does nothing.
    """

    __tablename__ = "automation_runs"

    automation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The stage-history row of the stay (a new entry into the stage is a new stay).
    stay_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(36))
    outcome: Mapped[str] = mapped_column(String(10))  # done, skipped
    detail: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_automation_runs_automation_at", "automation_id", "at"),)


class SchedulerLease(Base):
    """Which replica runs a periodic job until `expires_at` (the others wait)."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
