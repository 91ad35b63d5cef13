"""Fail-over to the next provider on transient failure, and the per-provider rate limit."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from crm_kernel.bus import Bus
from crm_kernel.contracts.notifications import SendEmail, SendSms
from crm_kernel.db import Database
from crm_kernel.testing import free_port, serve_in_process, wait_until
from crm_notifications.channels.errors import PermanentError, TransientError
from crm_notifications.channels.failover import Failover, RateLimited
from crm_notifications.main import create_app
from crm_notifications.models import Notification
from crm_notifications.notifications.dispatcher import Claimed, Dispatcher
from crm_notifications.testing import RawInbox, TwilioStub, settings_for


async def sent(db: Database, key: str) -> Notification | None:
    async with db.session() as session:
        row = (
            await session.execute(select(Notification).where(Notification.key == key))
        ).scalar_one_or_none()
    return row if row is not None and row.status == "sent" else None


async def test_a_dead_primary_provider_fails_over_to_the_next(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    inbox, live, dead = RawInbox(), free_port(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=live)
    controller.start()
    try:
        async with TwilioStub("AC1", "token") as backup:
            settings = settings_for(
                db_url,
                nats_url,
                tmp_dir,
                SMTP_URL=f"smtp://127.0.0.1:{dead},smtp://127.0.0.1:{live}",
                SMS_URL=f"twilio://AC1:token@127.0.0.1:{dead}?from=+15550001111,{backup.url()}",
            )
            async with serve_in_process(create_app(settings)):
                await bus.publish(
                    SendEmail(key="m", to="a@example.org", subject="s", body_text="b").envelope()
                )
                await bus.publish(SendSms(key="t", to="+447700900123", text="hi").envelope())
                mail = await wait_until(lambda: sent(db, "m"), timeout=20, message="mail")
                sms = await wait_until(lambda: sent(db, "t"), timeout=20, message="sms")
            assert mail.attempts == 1 and len(inbox.messages) == 1
            assert sms.attempts == 1 and [m["To"] for m in backup.created] == ["+447700900123"]
    finally:
        controller.stop()


class Scripted:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls = 0

    async def send(self, message: str) -> str:
        self.calls += 1
        if self.error:
            raise self.error
        return f"id-{message}"


async def test_a_permanent_error_is_not_tried_elsewhere() -> None:
    first, second = Scripted(PermanentError("550 no such user")), Scripted()
    with pytest.raises(PermanentError):
        await Failover([first, second]).send("x")
    assert second.calls == 0
    down = Failover([Scripted(TransientError("a")), Scripted(TransientError("b"))])
    with pytest.raises(TransientError, match="a; b"):
        await down.send("x")


async def test_the_rate_limit_spaces_messages() -> None:
    limited = RateLimited(Scripted(), per_second=20)
    started = time.monotonic()
    ids = await asyncio.gather(*(limited.send(str(i)) for i in range(5)))
    assert ids == [f"id-{i}" for i in range(5)]
    assert time.monotonic() - started >= 0.19  # 4 gaps of 50 ms at least


async def test_paced_mail_to_one_domain_is_all_sent_without_using_attempts(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    settings = settings_for(db_url, nats_url, tmp_dir, CRM_EMAIL_DOMAIN_RATE_PER_SECOND=2)
    async with serve_in_process(create_app(settings)):
        for i in range(6):
            await bus.publish(
                SendEmail(
                    key=f"p{i}", to=f"u{i}@slow.example", subject="s", body_text="b"
                ).envelope()
            )
        rows = [await wait_until(lambda k=f"p{i}": sent(db, k), timeout=20) for i in range(6)]
    assert all(r.attempts == 1 for r in rows)


def test_the_domain_allowance_is_per_second_and_per_domain() -> None:
    dispatcher = Dispatcher(
        None,  # type: ignore[arg-type]  # pacing needs no database
        mailer=Scripted(),  # type: ignore[arg-type]
        sms=Scripted(),  # type: ignore[arg-type]
        category="transactional",
        domain_rate=2,
    )

    def mail(to: str) -> Claimed:
        return Claimed("id", "k", "email", to, "s", "b", None, None, 1)

    second = datetime(2026, 11, 29, 12, 0, 0, 100_000, tzinfo=UTC)
    assert dispatcher._domain_paced(mail("a@slow.example"), second) is None
    assert dispatcher._domain_paced(mail("B@Slow.example"), second) is None
    assert dispatcher._domain_paced(mail("c@slow.example"), second) == datetime(
        2026, 11, 29, 12, 0, 1, tzinfo=UTC
    )
    assert dispatcher._domain_paced(mail("d@fast.example"), second) is None
    later = second + timedelta(seconds=1)
    assert dispatcher._domain_paced(mail("c@slow.example"), later) is None
