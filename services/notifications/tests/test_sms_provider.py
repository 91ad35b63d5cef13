"""SMS through a Twilio-style REST API: content, segments and cost, status callbacks."""

from __future__ import annotations

import base64
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import select

from crm_kernel.bus import Bus
from crm_kernel.contracts.notifications import SendSms
from crm_kernel.db import Database
from crm_kernel.testing import serve_in_process, wait_until
from crm_notifications.channels.twilio import signature
from crm_notifications.main import create_app
from crm_notifications.models import Notification, Suppression
from crm_notifications.testing import TwilioStub, events_on, settings_for

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "auth-token-123"
PUBLIC = "https://crm.example.com"


async def stored(db: Database, key: str, status: str) -> Notification | None:
    async with db.session() as session:
        row = (
            await session.execute(select(Notification).where(Notification.key == key))
        ).scalar_one_or_none()
    return row if row is not None and row.status == status else None


async def test_sms_goes_to_the_provider_and_status_callbacks_update_it(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    async with TwilioStub(SID, TOKEN) as provider:
        provider.refuse["+79990000000"] = 21211
        settings = settings_for(
            db_url,
            nats_url,
            tmp_dir,
            SMS_URL=provider.url("+15550001111"),
            CRM_SMS_PRICE_PER_SEGMENT="0.05",
            CRM_PUBLIC_URL=PUBLIC,
            CRM_SMS_CALLBACK_SECRET="s3cret-path",
        )
        text = "Ваш заказ №42 оплачен. Спасибо, что выбрали нас! Доставка завтра с 10 до 18 ч."  # noqa: RUF001
        assert len(text) > 70
        async with (
            serve_in_process(create_app(settings)) as base_url,
            httpx.AsyncClient(base_url=base_url) as http,
        ):
            await bus.publish(
                SendSms(
                    key="order:42:paid", to="+7 912 345-67-89", text=text, contact_id="c-42"
                ).envelope()
            )
            await bus.publish(SendSms(key="bad:1", to="+79990000000", text="hi").envelope())
            sent = await wait_until(
                lambda: stored(db, "order:42:paid", "sent"), timeout=20, message="sent"
            )
            failed = await wait_until(
                lambda: stored(db, "bad:1", "failed"), timeout=20, message="refused number"
            )

            form = provider.created[0]
            callback = f"{PUBLIC}/public/callbacks/sms/twilio/s3cret-path"
            assert form == {
                "To": "+79123456789",
                "From": "+15550001111",
                "Body": text,
                "StatusCallback": callback,
            }
            assert (
                provider.auth[0] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
            )
            assert sent.segments == 2 and sent.cost_estimate == Decimal("0.10")
            assert sent.provider_id and sent.provider_id.startswith("SM")
            assert failed.attempts == 1 and "21211" in (failed.last_error or "")
            async with db.session() as session:
                assert await session.get(Suppression, ("sms", "+79990000000")) is not None

            path = "/public/callbacks/sms/twilio/s3cret-path"
            report = {"MessageSid": sent.provider_id, "MessageStatus": "delivered"}
            wrong_path = await http.post("/public/callbacks/sms/twilio/guess", data=report)
            assert wrong_path.status_code == 404
            unsigned = await http.post(path, data=report, headers={"X-Twilio-Signature": "x"})
            assert unsigned.status_code == 403
            signed = {"X-Twilio-Signature": signature(TOKEN, callback, report)}
            assert (await http.post(path, data=report, headers=signed)).status_code == 204
            # Providers repeat callbacks: the second changes nothing.
            assert (await http.post(path, data=report, headers=signed)).status_code == 204
            delivered = await stored(db, "order:42:paid", "delivered")
            assert delivered is not None
            await wait_until(
                lambda: events_on(bus, "crm.notifications.delivery.delivered"),
                message="delivered event",
            )
            assert await events_on(bus, "crm.notifications.delivery.delivered") == 1
            events = await bus.js.get_last_msg(
                "CRM_NOTIFICATIONS", "crm.notifications.delivery.delivered"
            )
            assert b'"contact_id":"c-42"' in events.data


async def test_undelivered_callback_fails_and_suppresses_a_dead_number(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    async with TwilioStub(SID, "x") as provider:
        settings = settings_for(
            db_url,
            nats_url,
            tmp_dir,
            SMS_URL=provider.url(),
            CRM_SMS_CALLBACK_SECRET="cb",
        )
        async with (
            serve_in_process(create_app(settings)) as base_url,
            httpx.AsyncClient(base_url=base_url) as http,
        ):
            await bus.publish(SendSms(key="k", to="+447700900123", text="Hello").envelope())
            sent = await wait_until(lambda: stored(db, "k", "sent"), timeout=20, message="sent")
            assert sent.segments == 1
            report = {
                "MessageSid": sent.provider_id or "",
                "MessageStatus": "undelivered",
                "ErrorCode": "30006",
            }
            callback = settings.sms_callback_url("twilio")
            answer = await http.post(
                "/public/callbacks/sms/twilio/cb",
                data=report,
                headers={"X-Twilio-Signature": signature("x", callback, report)},
            )
            assert answer.status_code == 204
            failed = await stored(db, "k", "failed")
            assert failed is not None and "30006" in (failed.last_error or "")
            async with db.session() as session:
                assert await session.get(Suppression, ("sms", "+447700900123")) is not None
