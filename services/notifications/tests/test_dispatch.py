"""Delivery as a grown-up sender does it: retried when the server is away, never twice, never to the suppressed."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler
from sqlalchemy import select

import crm_notifications
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ConsentChanged
from crm_kernel.contracts.notifications import (
    BulkEmail,
    SendBulkEmail,
    SendEmail,
    bulk_email_commands,
)
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations
from crm_kernel.testing import TEST_JWT_SECRET, free_port, issue_token, serve_in_process, wait_until
from crm_notifications.channels.sinks import FileMailSink, FileSmsSink
from crm_notifications.main import create_app
from crm_notifications.models import Consent, Notification, Suppression
from crm_notifications.notifications.dispatcher import Dispatcher
from crm_notifications.notifications.intake import email_row, enqueue
from crm_notifications.settings import NotificationsSettings


class Inbox(MessageHandler):
    """An SMTP server's receiving side that keeps what it got and can refuse recipients."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        super().__init__()
        self.messages: list[email.message.Message] = []
        self.refuse = refuse or set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def handle_message(self, message: email.message.Message) -> None:
        self.messages.append(message)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


def settings(db_url: str, nats_url: str, tmp_dir: Path, smtp_port: int) -> NotificationsSettings:
    return NotificationsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        CRM_NOTIFY_RETRY_BASE_SECONDS=0.2,
    )


async def notification(db: Database, key: str) -> Notification | None:
    async with db.session() as session:
        return (
            await session.execute(select(Notification).where(Notification.key == key))
        ).scalar_one_or_none()


async def delivery_events(bus: Bus, subject: str) -> int:
    info = await bus.js.stream_info("CRM_NOTIFICATIONS", subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def test_smtp_down_then_back_is_retried_and_delivered_once(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    db = Database(db_url)
    try:
        async with serve_in_process(create_app(settings(db_url, nats_url, tmp_dir, port))):
            await bus.publish(
                SendEmail(
                    key="order:1:paid",
                    to="client@example.com",
                    subject="Оплачено",
                    body_text="Спасибо",
                    source_type="order",
                    source_id="o1",
                ).envelope()
            )
            await wait_until(
                lambda: _attempted(db, "order:1:paid", 2), timeout=20, message="retries"
            )
            assert inbox.messages == []
            controller.start()
            sent = await wait_until(
                lambda: _status(db, "order:1:paid", "sent"), timeout=30, message="sent"
            )
            await wait_until(
                lambda: _events(bus, "crm.notifications.delivery.sent", 1), message="event"
            )
        assert len(inbox.messages) == 1
        assert sent.attempts >= 2 and sent.last_error is None
        assert await delivery_events(bus, "crm.notifications.delivery.sent") == 1
    finally:
        controller.stop()
        await db.dispose()


async def test_550_fails_at_once_and_suppresses_the_address(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    port = free_port()
    inbox = Inbox(refuse={"gone@example.com"})
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    db = Database(db_url)
    try:
        async with serve_in_process(create_app(settings(db_url, nats_url, tmp_dir, port))):
            await bus.publish(
                SendEmail(
                    key="k-550", to="Gone@example.com", subject="Hi", body_text="x"
                ).envelope()
            )
            failed = await wait_until(
                lambda: _status(db, "k-550", "failed"), timeout=20, message="failed"
            )
            await bus.publish(
                SendEmail(
                    key="k-again", to="gone@example.com", subject="Hi", body_text="y"
                ).envelope()
            )
            await wait_until(
                lambda: _status(db, "k-again", "suppressed"), timeout=20, message="suppressed"
            )
            await wait_until(
                lambda: _events(bus, "crm.notifications.delivery.suppressed", 1), message="event"
            )
        assert failed.attempts == 1, "a permanent failure is not retried"
        async with db.session() as session:
            assert await session.get(Suppression, ("email", "gone@example.com")) is not None
        assert inbox.messages == []
        assert await delivery_events(bus, "crm.notifications.delivery.failed") == 1
    finally:
        controller.stop()
        await db.dispose()


async def test_unsubscribe_link_becomes_one_click_headers(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with serve_in_process(create_app(settings(db_url, nats_url, tmp_dir, port))):
            await bus.publish(
                SendEmail(
                    key="camp:1:r1",
                    to="r1@example.com",
                    subject="News",
                    body_text="x",
                    unsubscribe_url="http://127.0.0.1:8000/u/abc",
                ).envelope()
            )
            await wait_until(lambda: inbox.messages, timeout=20, message="delivery")
    finally:
        controller.stop()
    message = inbox.messages[0]
    assert message["List-Unsubscribe"] == "<http://127.0.0.1:8000/u/abc>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"]


async def test_admin_sends_once_per_idempotency_key_and_reads_the_log(
    db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    admin = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}
    try:
        async with serve_in_process(create_app(settings(db_url, nats_url, tmp_dir, port))) as url:
            async with httpx.AsyncClient(base_url=f"{url}/api/v1") as api:
                body = {"channel": "email", "to": "a@example.com", "subject": "S", "body_text": "B"}
                first = await api.post(
                    "/notifications", json=body, headers={**admin, "Idempotency-Key": "i-1"}
                )
                again = await api.post(
                    "/notifications", json=body, headers={**admin, "Idempotency-Key": "i-1"}
                )
                assert first.status_code == again.status_code == 202
                assert first.json()["id"] == again.json()["id"]
                await wait_until(lambda: inbox.messages, timeout=20, message="delivery")

                async def recorded_sent() -> httpx.Response | None:
                    got = await api.get(f"/notifications/{first.json()['id']}", headers=admin)
                    return got if got.json()["status"] == "sent" else None

                # The server has it; our record of it follows right after.
                detail = await wait_until(recorded_sent, message="the sent record")
                assert [a["outcome"] for a in detail.json()["attempt_log"]] == ["sent"]
                listed = await api.get(
                    "/notifications", params={"recipient": "a@example.com"}, headers=admin
                )
                assert [n["id"] for n in listed.json()["items"]] == [first.json()["id"]]
                rep = {"Authorization": f"Bearer {issue_token(Role.SALES_REP)}"}
                assert (await api.get("/notifications", headers=rep)).status_code == 403
                bad = await api.post(
                    "/notifications", json={**body, "to": "not-an-email"}, headers=admin
                )
                assert bad.status_code == 422
                sms = await api.post(
                    "/notifications",
                    headers=admin,
                    json={"channel": "sms", "to": "+79123456789", "body_text": "Ж" * 71},
                )
                assert sms.json()["segments"] == 2
                bad_sms = await api.post(
                    "/notifications",
                    headers=admin,
                    json={"channel": "sms", "to": "8 912 ABC", "body_text": "x"},
                )
                assert bad_sms.status_code == 422
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


async def _status(db: Database, key: str, status: str) -> Notification | None:
    row = await notification(db, key)
    return row if row is not None and row.status == status else None


async def _attempted(db: Database, key: str, times: int) -> bool:
    row = await notification(db, key)
    return row is not None and row.attempts >= times


async def _events(bus: Bus, subject: str, count: int) -> bool:
    return await delivery_events(bus, subject) == count


async def test_bulk_message_to_a_contact_who_withdrew_consent_after_queuing_is_suppressed(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)  # not started yet: SMTP is down
    db = Database(db_url)

    def consent(granted: bool, at: str) -> ConsentChanged:
        return ConsentChanged(
            contact_id="c1",
            channel="email",
            granted=granted,
            source="form",
            changed_at=at,
            email="Reader@example.com",
        )

    try:
        async with serve_in_process(create_app(settings(db_url, nats_url, tmp_dir, port))):
            await bus.publish(consent(True, "2026-11-01T10:00:00+00:00").envelope())
            await bus.publish(
                SendBulkEmail(
                    key="camp:7:c1",
                    to="reader@example.com",
                    subject="News",
                    body_text="x",
                    source_type="campaign",
                ).envelope()
            )
            await bus.publish(
                SendBulkEmail(
                    key="camp:7:none",
                    to="stranger@example.com",
                    subject="News",
                    body_text="x",
                    source_type="campaign",
                ).envelope()
            )
            await wait_until(
                lambda: _attempted(db, "camp:7:c1", 1), timeout=20, message="a first try"
            )
            # Withdrawn while the message waits for a retry; a late, older grant changes nothing.
            await bus.publish(consent(False, "2026-11-02T10:00:00+00:00").envelope())
            await bus.publish(consent(True, "2026-11-01T12:00:00+00:00").envelope())
            await wait_until(lambda: _consent_is(db, False), message="the withdrawal applied")
            controller.start()
            withdrawn = await wait_until(
                lambda: _status(db, "camp:7:c1", "suppressed"),
                timeout=30,
                message="suppressed at send time",
            )
            stranger = await wait_until(
                lambda: _status(db, "camp:7:none", "suppressed"),
                timeout=30,
                message="no consent known: suppressed",
            )
        assert withdrawn.last_error == "no marketing consent"
        assert stranger.last_error == "no marketing consent"
        assert inbox.messages == []
    finally:
        controller.stop()
        await db.dispose()


async def test_campaign_emails_batched_in_one_command_each_go_out_once_with_its_source(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    """`SendBulkEmails` carries many recipients in one stream message (one fsync, one ack)."""
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    db = Database(db_url)
    addresses = [f"reader{i}@example.com" for i in range(25)]
    emails = [
        BulkEmail(
            key=f"campaign:9:c{i}",
            to=address,
            subject=f"News for reader {i}",
            body_text=f"Hello reader {i}",
            contact_id=f"c{i}",
        )
        for i, address in enumerate(addresses)
    ]
    # A small size limit, so the 25 e-mails need several commands.
    commands = bulk_email_commands(emails, source_type="campaign", source_id="9", max_bytes=2_000)
    assert 1 < len(commands) < len(emails)
    try:
        async with serve_in_process(create_app(settings(db_url, nats_url, tmp_dir, port))):
            for i, address in enumerate(addresses[:-1]):  # the last one never consented
                await bus.publish(
                    ConsentChanged(
                        contact_id=f"c{i}",
                        channel="email",
                        granted=True,
                        source="form",
                        changed_at="2026-11-01T10:00:00+00:00",
                        email=address,
                    ).envelope()
                )
            await wait_until(
                lambda: _consents(db, len(addresses) - 1), message="consents replicated"
            )
            for command in commands:
                await bus.publish(command.envelope())
            # A producer's retry under new event ids: each e-mail keeps its key, so nothing more.
            await bus.publish(commands[0].envelope())
            await wait_until(
                lambda: _bulk_reported(bus, "sent", len(addresses) - 1),
                timeout=30,
                message="every consenting reader reported sent",
            )
            last = await wait_until(
                lambda: _status(db, emails[-1].key, "suppressed"), message="no consent"
            )
            await asyncio.sleep(0.5)  # time for a duplicate, if one were coming
        assert sorted(m["To"] for m in inbox.messages) == sorted(addresses[:-1])
        assert {m["Subject"] for m in inbox.messages} == {f"News for reader {i}" for i in range(24)}
        first = await notification(db, emails[0].key)
        assert first is not None
        assert (first.category, first.source_type, first.source_id, first.contact_id) == (
            "bulk",
            "campaign",
            "9",
            "c0",
        )
        assert last.last_error == "no marketing consent"
        # Reported in batches (campaign traffic), each once; no single event per message.
        reported = await bulk_deliveries(bus)
        assert sorted(d["key"] for d in reported if d["status"] == "sent") == sorted(
            e.key for e in emails[:-1]
        )
        assert [d["key"] for d in reported if d["status"] == "suppressed"] == [emails[-1].key]
        assert await delivery_events(bus, "crm.notifications.delivery.sent") == 0
    finally:
        controller.stop()
        await db.dispose()


async def bulk_deliveries(bus: Bus) -> list[dict[str, Any]]:
    """Every delivery reported in `crm.notifications.delivery.batch` events so far."""
    subject = "crm.notifications.delivery.batch"
    info = await bus.js.stream_info("CRM_NOTIFICATIONS", subjects_filter=subject)
    expected = int((info.state.subjects or {}).get(subject, 0))
    if not expected:
        return []
    subscription = await bus.js.pull_subscribe(subject, stream="CRM_NOTIFICATIONS")
    try:
        messages = await subscription.fetch(expected, timeout=5)
        while len(messages) < expected:
            messages += await subscription.fetch(expected - len(messages), timeout=5)
    finally:
        await subscription.unsubscribe()
    return [d for m in messages for d in orjson.loads(m.data)["data"]["deliveries"]]


async def _bulk_reported(bus: Bus, status: str, count: int) -> bool:
    return len([d for d in await bulk_deliveries(bus) if d["status"] == status]) == count


async def _consents(db: Database, count: int) -> bool:
    async with db.session() as session:
        return len((await session.execute(select(Consent))).all()) == count


async def _consent_is(db: Database, granted: bool) -> bool:
    async with db.session() as session:
        row = await session.get(Consent, ("email", "reader@example.com"))
        return row is not None and row.granted is granted


async def test_two_workers_claiming_at_once_never_take_the_same_notification(
    db_url: str, tmp_dir: Path
) -> None:
    # Two engines are two workers' connections (processes or replicas) on one database.
    first, second = Database(db_url), Database(db_url)
    try:
        await migrate(first, service_migrations(crm_notifications.__file__))
        commands = [
            SendBulkEmail(key=f"claim-{i}", to=f"c{i}@example.com", subject="s", body_text="b")
            for i in range(600)
        ]
        async with first.transaction() as session:
            await enqueue(session, [email_row(c, category="bulk") for c in commands])
        workers = [
            Dispatcher(
                db,
                mailer=FileMailSink(tmp_dir / "mail", "crm@example.com"),
                sms=FileSmsSink(tmp_dir / "sms"),
                category="bulk",
                batch_size=50,
            )
            for db in (first, second, first, second)
        ]
        claimed: list[str] = []
        while batches := await asyncio.gather(*(w.claim() for w in workers)):
            if not any(batches):
                break
            claimed += [n.id for batch in batches for n in batch]
        assert len(claimed) == len(commands)
        assert len(set(claimed)) == len(claimed)
        async with first.session() as session:
            statuses = set((await session.execute(select(Notification.status))).scalars())
        assert statuses == {"sending"}
    finally:
        await first.dispose()
        await second.dispose()
