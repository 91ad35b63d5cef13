"""The task scheduler: emits `task.due_soon` and `task.overdue` once per due time, across replicas.

Each notice is claimed by a conditional UPDATE (`... WHERE reminded_at IS
NULL`) in the same transaction as its outbox row: a replica that loses the race
updates no row and emits nothing, and a crash before the commit leaves the row
unclaimed for the next tick. The UPDATE is the transaction's first statement,
so on SQLite it takes the write lock at once (no stale read snapshot to fail).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from crm_contacts.common import utcnow
from crm_contacts.tasks.models import Task
from crm_contacts.tasks.schemas import TaskStatus
from crm_contacts.tasks.service import publish
from crm_kernel.app import Runtime, repeat
from crm_kernel.contracts.contacts import TaskDueSoon, TaskOverdue
from crm_kernel.db import Database, picked_once

BATCH = 200


async def notify_due_tasks(db: Database, now: datetime | None = None) -> int:
    """Claim and announce the notices due by `now` (one batch of each); returns how many."""
    now = now or utcnow()
    live = (Task.status == TaskStatus.OPEN, Task.deleted_at.is_(None))
    # The batches are picked from an alias, so the subqueries are not correlated
    # with the UPDATE; the UPDATE re-checks the condition on the row it locks.
    pick = aliased(Task)
    picked = (pick.status == TaskStatus.OPEN, pick.deleted_at.is_(None))
    overdue_due = select(pick.id).where(
        *picked, pick.overdue_notified_at.is_(None), pick.due_at <= now
    )
    reminder_due = select(pick.id).where(
        *picked, pick.reminded_at.is_(None), pick.remind_at <= now, pick.due_at > now
    )
    async with db.transaction() as session:
        # An overdue task needs no reminder any more: both marks are set.
        overdue_ids = (
            await session.scalars(
                update(Task)
                .where(
                    Task.id.in_(picked_once(overdue_due.limit(BATCH))),
                    *live,
                    Task.overdue_notified_at.is_(None),
                    Task.due_at <= now,
                )
                .values(overdue_notified_at=now, reminded_at=func.coalesce(Task.reminded_at, now))
                .returning(Task.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        reminded_ids = (
            await session.scalars(
                update(Task)
                .where(
                    Task.id.in_(picked_once(reminder_due.limit(BATCH))),
                    *live,
                    Task.reminded_at.is_(None),
                    Task.remind_at <= now,
                )
                .values(reminded_at=now)
                .returning(Task.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        for kind, ids in ((TaskOverdue, overdue_ids), (TaskDueSoon, reminded_ids)):
            if not ids:
                continue
            tasks = (
                await session.scalars(select(Task).where(Task.id.in_(ids)).order_by(Task.due_at))
            ).all()
            for task in tasks:
                await publish(session, kind, task, actor=None)
    return len(overdue_ids) + len(reminded_ids)


async def start(runtime: Runtime) -> None:
    """Start hook: run the scheduler for the life of the service."""
    interval = float(getattr(runtime.settings, "task_scheduler_interval", 1.0))
    runtime.spawn(
        repeat(lambda: notify_due_tasks(runtime.db), interval=interval, batch=BATCH, name="tasks"),
        "task-scheduler",
    )
