"""The tasks table, with the scheduler's bookkeeping (`remind_at`, `reminded_at`, `overdue_notified_at`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_contacts.models import Base
from crm_kernel.db import UtcDateTime


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    assignee_id: Mapped[str] = mapped_column(String(36), index=True)
    contact_id: Mapped[str | None] = mapped_column(String(36), index=True)
    deal_id: Mapped[str | None] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(20))
    remind_before_minutes: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Scheduler state, not shown by the API: when the reminder is due (None: no
    # reminder), and when each notice was claimed; reset when the due time moves.
    remind_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The `key` of the crm.contacts.task.create command that made it (one task per key).
    create_key: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_tasks_due", "due_at", "id"),
        # The scheduler's scans: open tasks by when their next notice is due.
        Index("ix_tasks_status_remind", "status", "remind_at"),
        Index("ix_tasks_status_due", "status", "due_at"),
        Index("ix_tasks_create_key", "create_key", unique=True),
    )
    __mapper_args__ = {"version_id_col": version}
