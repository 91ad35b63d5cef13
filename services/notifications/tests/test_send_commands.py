"""Send commands arrive once: through the local sinks by default, over real SMTP when configured."""

from __future__ import annotations

import email
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from crm_kernel.bus import Bus
from crm_kernel.contracts.notifications import SendEmail, SendSms
from crm_kernel.testing import TEST_JWT_SECRET, free_port, serve_in_process, wait_until
from crm_notifications.main import create_app
from crm_notifications.settings import NotificationsSettings


def settings_for(db_url: str, nats_url: str, tmp_dir: Path, **extra: str) -> NotificationsSettings:
    return NotificationsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        **extra,
    )


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


async def test_email_and_sms_commands_land_in_the_dev_sinks_once(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    async with serve_in_process(create_app(settings_for(db_url, nats_url, tmp_dir))):
        mail = SendEmail(
            key="welcome:1",
            to="anna@example.com",
            subject="Здравствуйте",
            body_text="Текст",
            body_html="<p>Текст</p>",
        )
        envelope = mail.envelope()
        await bus.publish(envelope)
        # The same command again under a new event id (a producer retry): still one message.
        await bus.publish(mail.envelope())
        await bus.publish(SendSms(key="otp:1", to="+79123456789", text="Код 1234").envelope())

        mail_dir, sms_dir = tmp_dir / "mail", tmp_dir / "sms"
        await wait_until(
            lambda: mail_dir.exists() and list(mail_dir.glob("*.eml")), message="mail file"
        )
        await wait_until(
            lambda: sms_dir.exists() and list(sms_dir.glob("*.json")), message="sms file"
        )
        await bus.publish(SendSms(key="otp:2", to="+79123456780", text="after").envelope())
        await wait_until(lambda: len(list(sms_dir.glob("*.json"))) == 2, message="second sms")

    files = list(mail_dir.glob("*.eml"))
    assert len(files) == 1
    parsed = email.message_from_bytes(files[0].read_bytes())
    assert parsed["To"] == "anna@example.com"
    assert (
        str(email.header.make_header(email.header.decode_header(parsed["Subject"])))
        == "Здравствуйте"
    )
    assert parsed.is_multipart()
    sms = sorted(json.loads(p.read_text())["key"] for p in sms_dir.glob("*.json"))
    assert sms == ["otp:1", "otp:2"]
    assert not list(mail_dir.glob("*.part"))


async def test_email_goes_over_smtp_when_smtp_url_is_set(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus
) -> None:
    handler = _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = settings_for(db_url, nats_url, tmp_dir, SMTP_URL=f"smtp://127.0.0.1:{port}")
        async with serve_in_process(create_app(settings)):
            await bus.publish(
                SendEmail(
                    key="k1", to="boss@example.com", subject="Weekly", body_text="Numbers"
                ).envelope()
            )
            await wait_until(lambda: handler.messages, message="SMTP delivery")
    finally:
        controller.stop()
    assert len(handler.messages) == 1
    assert handler.messages[0]["To"] == "boss@example.com"
    assert handler.messages[0].get_payload().strip() == "Numbers"
    assert not (tmp_dir / "mail").exists()


def test_a_subject_with_a_line_break_cannot_inject_headers(tmp_dir: Path) -> None:
    from crm_notifications.channels.messages import OutgoingEmail, to_mime

    with pytest.raises(ValueError):
        to_mime(
            OutgoingEmail(
                key="k", to="a@example.com", subject="Hi\r\nBcc: x@evil.test", body_text="x"
            ),
            "CRM <crm@example.com>",
        )


class _Collect(MessageHandler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[email.message.Message] = []

    def handle_message(self, message: email.message.Message) -> None:
        self.messages.append(message)
