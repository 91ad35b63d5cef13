"""Compose and send the weekly report: one `SendEmail` per head of sales per week.

Each head's e-mail is claimed by (head, week) in the same transaction as its
outbox row, so several replicas, restarts and crashes send it exactly once;
the command's `key` lets notifications drop a repeat as well.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import select

from crm_kernel.app import Runtime
from crm_kernel.auth import Principal, Role
from crm_kernel.contracts.notifications import SendEmail
from crm_kernel.db import Database
from crm_kernel.outbox import add_event
from crm_kernel.tables import directory_users as users
from crm_reports.jobs import claim
from crm_reports.kpis.service import kpis
from crm_reports.managers.service import managers
from crm_reports.scope import Filters
from crm_reports.settings import ReportsSettings
from crm_reports.weekly.schedule import Weekly, previous_week

log = logging.getLogger(__name__)


async def heads_of_sales(db: Database) -> list[tuple[str, str]]:
    async with db.session() as session:
        query = select(users.c.id, users.c.email).where(
            users.c.role == Role.HEAD_OF_SALES.value, users.c.is_active.is_(True)
        )
        return [(i, e) for i, e in (await session.execute(query)).all()]


async def compose(db: Database, head_id: str, start: datetime, end: datetime) -> tuple[str, str]:
    """Subject and plain-text body: the week's kpis and managers over the head's teams."""
    principal = Principal(user_id=head_id, role=Role.HEAD_OF_SALES)
    period = Filters(period_from=start, period_to=end)
    indicators = await kpis(db=db, principal=principal, filters=period)
    results = await managers(db=db, principal=principal, filters=period)
    week = f"{start.date().isoformat()} - {end.date().isoformat()}"
    lines = [f"Sales report for the week {week} (end exclusive)", "", "Indicators (previous week):"]
    for k in indicators.kpis:
        money = f" {k.currency}" if k.currency else ""
        lines.append(f"  {k.name}{money}: {_show(k.value)} ({_show(k.previous)})")
    lines += ["", "Managers: created / won / lost, win rate, revenue, overdue tasks"]
    for m in results.managers:
        revenue = ", ".join(f"{t.amount} {t.currency}" for t in m.revenue_won) or "-"
        lines.append(
            f"  {m.owner_id}: {m.deals_created} / {m.deals_won} / {m.deals_lost}, "
            f"{_show(m.win_rate)}, {revenue}, {m.overdue_tasks}"
        )
    return f"Weekly sales report {week}", "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


async def send_weekly(db: Database, weekly: Weekly, now: datetime) -> int:
    """Send the report due most recently to every head who has not had it yet; returns how many."""
    due = weekly.last_due(now)
    start, end = previous_week(due)
    slot = due.date().isoformat()
    sent = 0
    for head_id, email in await heads_of_sales(db):
        async with db.transaction() as session:
            if not await claim(session, f"weekly-report:{head_id}", slot):
                continue
            subject, body = await compose(db, head_id, start, end)
            await add_event(
                session, _email(f"reports-weekly:{head_id}:{slot}", email, subject, body, slot)
            )
        sent += 1
    return sent


async def send_now(db: Database, weekly: Weekly, now: datetime) -> int:
    """On demand: last week's report to every head now (not counted against the schedule)."""
    start, end = previous_week(weekly.last_due(now))
    run = str(uuid.uuid4())
    sent = 0
    for head_id, email in await heads_of_sales(db):
        subject, body = await compose(db, head_id, start, end)
        async with db.transaction() as session:
            await add_event(
                session, _email(f"reports-now:{run}:{head_id}", email, subject, body, run)
            )
        sent += 1
    return sent


def _email(key: str, to: str, subject: str, body: str, source_id: str) -> SendEmail:
    return SendEmail(
        key=key,
        to=to,
        subject=subject,
        body_text=body,
        category="transactional",
        source_type="weekly_report",
        source_id=source_id,
    )


async def weekly_loop(runtime: Runtime) -> None:
    """Check every tick whether this week's report is due and not yet sent to someone."""
    settings = cast(ReportsSettings, runtime.settings)
    weekly = Weekly.parse(settings.weekly_report_at, settings.report_time_zone)
    while True:
        try:
            sent = await send_weekly(runtime.db, weekly, datetime.now(UTC))
            if sent:
                log.info("weekly report sent to %s heads of sales", sent)
        except Exception:
            log.exception("weekly report failed; retrying at the next tick")
        await asyncio.sleep(settings.scheduler_tick_seconds)
