"""Per-contact preferences: refused categories are suppressed, quiet hours defer SMS (not drop)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from crm_kernel.bus import Bus
from crm_kernel.contracts.notifications import SendEmail, SendSms
from crm_kernel.db import Database
from crm_kernel.testing import issue_token, serve_in_process, wait_until
from crm_notifications.main import create_app
from crm_notifications.models import Attempt, Notification
from crm_notifications.preferences.quiet import quiet_until
from crm_notifications.testing import settings_for


async def by_key(db: Database, key: str) -> Notification | None:
    async with db.session() as session:
        return (
            await session.execute(select(Notification).where(Notification.key == key))
        ).scalar_one_or_none()


async def test_opt_outs_suppress_and_quiet_hours_defer(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    reader, sleeper = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    window = {
        "time_zone": "UTC",
        "quiet_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    async with (
        serve_in_process(create_app(settings_for(db_url, nats_url, tmp_dir))) as base_url,
        httpx.AsyncClient(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {issue_token('admin')}"},
        ) as api,
    ):
        put = await api.put(
            f"/notification-preferences/{reader}",
            json={"opt_out": {"email": ["reminder", "transactional"]}},
        )
        assert put.status_code == 200, put.text
        assert (
            await api.put(f"/notification-preferences/{sleeper}", json=window)
        ).status_code == 200
        bad = await api.put(f"/notification-preferences/{sleeper}", json={"time_zone": "Mars/Base"})
        assert bad.status_code == 422

        for key, category in (("r:reminder", "reminder"), ("r:order", "transactional")):
            await bus.publish(
                SendEmail(
                    key=key,
                    to="reader@example.com",
                    subject="s",
                    body_text="b",
                    category=category,
                    contact_id=reader,
                ).envelope()
            )
        for key, category in (("s:reminder", "reminder"), ("s:code", "transactional")):
            await bus.publish(
                SendSms(
                    key=key, to="+79123456789", text="t", category=category, contact_id=sleeper
                ).envelope()
            )

        async def settled() -> bool:
            rows = [await by_key(db, k) for k in ("r:reminder", "r:order", "s:code")]
            deferred = await _deferred(db)
            return (
                all(r is not None and r.status in ("sent", "suppressed") for r in rows) and deferred
            )

        await wait_until(settled, timeout=20, message="all screened")
        refused = await by_key(db, "r:reminder")
        assert refused is not None and refused.status == "suppressed"
        assert refused.last_error == "opted out of reminder"
        order = await by_key(db, "r:order")
        assert order is not None and order.status == "sent"  # transactional cannot be refused
        code = await by_key(db, "s:code")
        assert code is not None and code.status == "sent"  # nor held back at night
        held = await by_key(db, "s:reminder")
        assert held is not None and held.status == "queued" and held.attempts == 0
        assert held.next_attempt_at > now + timedelta(minutes=50)


async def _deferred(db: Database) -> bool:
    async with db.session() as session:
        return bool(
            (await session.execute(select(Attempt).where(Attempt.outcome == "deferred"))).first()
        )


def test_quiet_hours_wrap_midnight_in_the_recipients_zone() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    start, end = time(21, 0), time(9, 0)
    late = datetime(2026, 11, 29, 20, 30, tzinfo=UTC)  # 23:30 in Moscow
    assert quiet_until(late, moscow, start, end) == datetime(2026, 11, 30, 9, 0, tzinfo=moscow)
    early = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 06:00 in Moscow
    assert quiet_until(early, moscow, start, end) == datetime(2026, 11, 30, 9, 0, tzinfo=moscow)
    day = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
    assert quiet_until(day, moscow, start, end) is None
