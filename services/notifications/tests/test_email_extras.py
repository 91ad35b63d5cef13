"""E-mail extras: VERP return path, DKIM that verifies, DSN bounces that suppress."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import select

from crm_kernel.bus import Bus
from crm_kernel.contracts.notifications import SendEmail
from crm_kernel.db import Database
from crm_kernel.testing import free_port, serve_in_process, wait_until
from crm_notifications.channels import dsn as reports
from crm_notifications.channels.dkim import relaxed_body
from crm_notifications.channels.messages import OutgoingEmail
from crm_notifications.channels.smtp import SmtpMailer
from crm_notifications.main import create_app
from crm_notifications.models import Notification, Suppression
from crm_notifications.testing import RawInbox, events_on, settings_for


def rsa_key() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


async def stored(db: Database, key: str, status: str) -> Notification | None:
    async with db.session() as session:
        row = (
            await session.execute(select(Notification).where(Notification.key == key))
        ).scalar_one_or_none()
    return row if row is not None and row.status == status else None


def dsn(verp: str, status: str, action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Your message could not be delivered.\r\n"
        "--B\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "\r\n"
        "Final-Recipient: rfc822; gone@example.org\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B--\r\n"
    ).encode()


async def test_signed_verp_mail_and_a_dsn_bounce_suppresses_the_address(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    pem, dns_record = rsa_key()
    inbox = RawInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = settings_for(
        db_url,
        nats_url,
        tmp_dir,
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        CRM_MAIL_FROM="Shop <news@shop.example>",
        CRM_BOUNCE_DOMAIN="bounces.shop.example",
        CRM_EMAIL_CALLBACK_SECRET="dsn-secret",
        DKIM_SELECTOR="s1",
        DKIM_DOMAIN="shop.example",
        DKIM_PRIVATE_KEY=pem,
    )
    try:
        async with (
            serve_in_process(create_app(settings)) as base_url,
            httpx.AsyncClient(base_url=base_url) as http,
        ):
            await bus.publish(
                SendEmail(
                    key="promo:1",
                    to="gone@example.org",
                    subject="Скидки   недели",
                    body_text="Привет!\n\nСкидки  до 50%.   \n",  # noqa: RUF001
                    body_html="<p>Привет!</p>",
                    unsubscribe_url="https://crm.example.com/public/u/tok",
                    contact_id="c-1",
                ).envelope()
            )
            sent = await wait_until(lambda: stored(db, "promo:1", "sent"), message="sent")
            mail_from, rcpt_tos, raw = inbox.messages[0]
            assert mail_from == f"bounce+{sent.id}@bounces.shop.example"
            assert rcpt_tos == ["gone@example.org"]
            assert raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
            assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
            assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: dns_record)
            assert not dkim.verify(
                raw.replace(b"To: gone@example.org", b"To: else@example.org"),
                dnsfunc=lambda n, timeout=5: dns_record,
            )

            path = "/public/callbacks/email/dsn-secret"
            verp = mail_from
            assert (
                await http.post("/public/callbacks/email/nope", content=dsn(verp, "5.1.1"))
            ).status_code == 404
            assert (await http.post(path, content=b"hello")).status_code == 422
            # A delay notice changes nothing.
            assert (await http.post(path, content=dsn(verp, "4.4.1", "delayed"))).status_code == 204
            assert await stored(db, "promo:1", "sent") is not None
            answer = await http.post(
                path, content=dsn(verp, "5.1.1"), headers={"Content-Type": "message/rfc822"}
            )
            assert answer.status_code == 204
            bounced = await stored(db, "promo:1", "bounced")
            assert bounced is not None and "5.1.1" in (bounced.last_error or "")
            async with db.session() as session:
                suppression = await session.get(Suppression, ("email", "gone@example.org"))
            assert suppression is not None and suppression.reason == "hard_bounce"
            await wait_until(
                lambda: events_on(bus, "crm.notifications.delivery.bounced"), message="event"
            )
            last = await bus.js.get_last_msg(
                "CRM_NOTIFICATIONS", "crm.notifications.delivery.bounced"
            )
            assert b'"permanent":true' in last.data and b'"contact_id":"c-1"' in last.data

            # The next message to that address is suppressed, not sent.
            await bus.publish(
                SendEmail(
                    key="promo:2", to="gone@example.org", subject="Again", body_text="x"
                ).envelope()
            )
            await wait_until(lambda: stored(db, "promo:2", "suppressed"), message="suppressed")
            assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_relaxed_body_canonicalisation() -> None:
    assert relaxed_body(b"a  b \t\r\nc\r\n\r\n\r\n") == b"a b\r\nc\r\n"
    assert relaxed_body(b"") == b""


def ed25519_key() -> tuple[str, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return pem, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)


async def test_ed25519_dkim_signature_of_a_sent_mail_verifies(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    # dkimpy checks ed25519 with PyNaCl (a pinned dev dependency): no skip, a missing one fails.
    pem, dns_record = ed25519_key()
    inbox = RawInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = settings_for(
        db_url,
        nats_url,
        tmp_dir,
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        CRM_MAIL_FROM="Shop <news@shop.example>",
        DKIM_SELECTOR="ed1",
        DKIM_DOMAIN="shop.example",
        DKIM_PRIVATE_KEY=pem,
    )
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return dns_record

    try:
        async with serve_in_process(create_app(settings)):
            await bus.publish(
                SendEmail(
                    key="ed:1",
                    to="anna@example.org",
                    subject="Заказ   отправлен",
                    body_text="Здравствуйте!\n\nВаш заказ  в пути.   \n",  # noqa: RUF001
                    body_html="<p>Здравствуйте!</p>",
                    unsubscribe_url="https://crm.example.com/public/u/ed",
                ).envelope()
            )
            await wait_until(lambda: stored(db, "ed:1", "sent"), message="sent")
    finally:
        controller.stop()
    _, rcpt_tos, raw = inbox.messages[0]
    assert rcpt_tos == ["anna@example.org"]
    assert raw.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;")
    assert b"d=shop.example; s=ed1;" in raw
    assert dkim.verify(raw, dnsfunc=dns)
    assert asked == [b"ed1._domainkey.shop.example."]
    # Any change to a signed header or to the body breaks it.
    assert not dkim.verify(raw.replace(b"anna@example.org", b"eve@example.org"), dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"crm.example.com", b"evil.example.com"), dnsfunc=dns)
    assert not dkim.verify(raw + b"P.S. forged\r\n", dnsfunc=dns)


@pytest.mark.parametrize(
    "field", ["subject", "to", "unsubscribe_url"], ids=["subject", "to", "unsubscribe"]
)
def test_the_fast_renderer_refuses_line_breaks_in_headers(field: str) -> None:
    mailer = SmtpMailer("smtp://127.0.0.1:25", "CRM <crm@shop.example>")
    values = {"subject": "Hi", "to": "a@example.org", "unsubscribe_url": "https://x/u"}
    values[field] += "\r\nBcc: victim@example.org"
    with pytest.raises(ValueError):
        mailer.render(OutgoingEmail(key="k", body_text="x", **values))


def test_dsn_without_verp_names_the_original_by_message_id() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: news@shop.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: rfc822; full@example.org\r\nAction: failed\r\nStatus: 4.2.2\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"Message-ID: <abc.123@shop.example>\r\nSubject: Hi\r\n"
        b"--B--\r\n"
    )
    report = reports.parse(raw)
    assert report is not None
    assert report.notification_id is None and report.message_id == "<abc.123@shop.example>"
    assert not report.permanent and not report.complaint


def test_a_complaint_report_is_a_permanent_complaint() -> None:
    raw = (
        b"From: fbl@isp.example\r\nTo: bounce+0190a3c5-1111-7222-8333-444455556666@b.example\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
        b"--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        b"Feedback-Type: abuse\r\nUser-Agent: isp/1.0\r\nVersion: 1\r\n"
        b"--F--\r\n"
    )
    report = reports.parse(raw)
    assert report is not None and report.complaint and report.permanent
    assert report.notification_id == "0190a3c5-1111-7222-8333-444455556666"
