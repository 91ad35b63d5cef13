"""Public routes: signed links and forms forwarded to the services, pages in Russian and English."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from crm_gateway.public.routes import PIXEL
from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import (
    STUB_CALLBACK_SECRET,
    Api,
    PublicStub,
    public_stub_app,
    running_gateway,
)
from crm_kernel.testing import serve_in_process

MakeSettings = Callable[..., GatewaySettings]


@pytest.fixture
async def stub() -> AsyncIterator[PublicStub]:
    """The services' public endpoints (not built yet): a stand-in keeping the contract."""
    received: list[dict[str, Any]] = []
    async with serve_in_process(public_stub_app(received)) as url:
        yield PublicStub(url=url, received=received)


def _behind(stub: PublicStub, **overrides: Any) -> dict[str, Any]:
    return {
        f"{service}_URL": stub.url
        for service in ("CAMPAIGNS", "DEALS", "CONTACTS", "NOTIFICATIONS")
    } | overrides


@pytest.fixture
async def public(make_settings: MakeSettings, stub: PublicStub) -> AsyncIterator[Api]:
    async with running_gateway(make_settings(**_behind(stub))) as api:
        yield api


def tampered(token: str) -> str:
    payload, signature = token.split(".")
    return payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]


async def test_a_click_redirects_only_to_the_signed_http_target(
    public: Api, stub: PublicStub
) -> None:
    token = stub.token("campaigns.click", url="https://shop.example.com/offer?x=1&y=2")
    ok = await public.http.get(f"/public/c/{token}")
    assert ok.status_code == 302
    assert ok.headers["location"] == "https://shop.example.com/offer?x=1&y=2"
    assert stub.received[-1]["kind"] == "click"

    forged = await public.http.get(f"/public/c/{tampered(token)}")
    assert forged.status_code == 404
    assert "location" not in forged.headers
    assert "This link is not valid" in forged.text
    assert forged.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example.com/phish",
        "javascript:alert(document.cookie)",
        "/relative/path",
        "https:\\\\evil.example.com",
        "data:text/html,<script>alert(1)</script>",
        "ftp://files.example.com/x",
    ],
)
async def test_an_open_redirect_attempt_fails(public: Api, stub: PublicStub, target: str) -> None:
    token = stub.token("campaigns.click", url=target)
    response = await public.http.get(f"/public/c/{token}")
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_the_open_pixel_is_always_an_image(public: Api, stub: PublicStub) -> None:
    good = await public.http.get(
        f"/public/o/{stub.token('campaigns.open', m='1')}",
        headers={"User-Agent": "MailClient/1.0", "X-Forwarded-For": "203.0.113.7"},
    )
    bad = await public.http.get("/public/o/garbage")
    for response in (good, bad):
        assert response.status_code == 200
        assert response.content == PIXEL
        assert response.headers["content-type"] == "image/gif"
        assert response.headers["cache-control"] == "no-store"
    opened = [r for r in stub.received if r["kind"] == "open"]
    assert len(opened) == 1
    assert opened[0]["headers"]["user-agent"] == "MailClient/1.0"
    assert opened[0]["headers"]["x-forwarded-for"].startswith("203.0.113.7")
    assert "authorization" not in opened[0]["headers"]


async def test_unsubscribe_page_and_one_click_in_both_languages(
    public: Api, stub: PublicStub
) -> None:
    token = stub.token("campaigns.unsubscribe", address="a***@example.com")
    english = await public.http.get(f"/public/u/{token}", headers={"Accept-Language": "en-US"})
    russian = await public.http.get(
        f"/public/u/{token}", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}
    )
    chosen = await public.http.get(f"/public/u/{token}?lang=en", headers={"Accept-Language": "ru"})
    assert english.status_code == russian.status_code == 200
    assert "Stop sending messages to a***@example.com?" in english.text
    assert '<html lang="en">' in english.text
    assert "Больше не присылать сообщения на a***@example.com?" in russian.text
    assert '<html lang="ru">' in russian.text
    assert '<html lang="en">' in chosen.text
    assert 'method="post"' in english.text
    assert "form-action 'self'" in english.headers["content-security-policy"]

    # RFC 8058: the mail client posts the one-click body; it reaches the service unchanged.
    done = await public.http.post(
        f"/public/u/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text
    posted = [r for r in stub.received if r["kind"] == "unsubscribe"]
    assert posted[0]["body"] == "List-Unsubscribe=One-Click"
    assert posted[0]["headers"]["content-type"] == "application/x-www-form-urlencoded"
    again = await public.http.get(f"/public/u/{token}?lang=ru")
    assert "уже отписан" in again.text

    bad = await public.http.post(f"/public/u/{tampered(token)}?lang=ru")
    assert bad.status_code == 404
    assert "Ссылка недействительна" in bad.text


async def test_event_registration_and_a_full_event(public: Api, stub: PublicStub) -> None:
    token = stub.token("campaigns.event", name="Winter <b>meetup</b>", seats=5)
    page = await public.http.get(f"/public/e/{token}")
    assert page.status_code == 200
    # Names from the service are escaped, never markup.
    assert "Winter &lt;b&gt;meetup&lt;/b&gt;" in page.text
    assert "Moscow, Tverskaya 1" in page.text
    registered = await public.http.post(f"/public/e/{token}?lang=ru")
    assert registered.status_code == 200
    assert "Вы зарегистрированы" in registered.text
    full = stub.token("campaigns.event", name="Sold out", seats=0)
    refused = await public.http.post(f"/public/e/{full}")
    assert refused.status_code == 409
    assert "No seats left" in refused.text


async def test_order_status_page_in_both_languages(public: Api, stub: PublicStub) -> None:
    token = stub.token("deals.order", number="A-1001")
    english = await public.http.get(f"/public/orders/{token}?lang=en")
    russian = await public.http.get(f"/public/orders/{token}?lang=ru")
    assert english.status_code == russian.status_code == 200
    assert "Order A-1001" in english.text and "Shipped" in english.text
    assert "1250.00 RUB" in english.text
    assert "2026-11-25 12:30 UTC" in english.text
    assert "Заказ A-1001" in russian.text and "Отправлен" in russian.text
    expired = await public.http.get(f"/public/orders/{tampered(token)}")
    assert expired.status_code == 404


async def test_web_form_forwards_known_fields_and_drops_bots(public: Api, stub: PublicStub) -> None:
    lead = {"first_name": "Ada", "email": "ada@example.com", "utm_source": "ads", "admin": True}
    accepted = await public.http.post("/public/forms/contact-us", json=lead)
    assert accepted.status_code == 202
    assert accepted.json() == {"received": True}
    forms = [r for r in stub.received if r["kind"] == "form"]
    assert len(forms) == 1
    assert '"admin"' not in forms[0]["body"] and '"utm_source":"ads"' in forms[0]["body"]

    bot = await public.http.post(
        "/public/forms/contact-us", json={**lead, "website": "http://spam.example"}
    )
    assert bot.status_code == 200
    assert len([r for r in stub.received if r["kind"] == "form"]) == 1  # dropped

    invalid = await public.http.post("/public/forms/contact-us", json={"email": "nope"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "email"
    unknown = await public.http.post("/public/forms/nope", json=lead)
    assert unknown.status_code == 404
    not_object = await public.http.post("/public/forms/contact-us", json=[1, 2])
    assert not_object.status_code == 422

    # A browser's form post gets pages.
    thanks = await public.http.post(
        "/public/forms/contact-us?lang=ru", data={"first_name": "Ада", "email": "ada@example.com"}
    )
    assert thanks.status_code == 200
    assert "Спасибо!" in thanks.text
    wrong = await public.http.post("/public/forms/contact-us", data={"email": "nope"})
    assert wrong.status_code == 422
    assert "email: not an e-mail" in wrong.text
    assert wrong.headers["content-type"].startswith("text/html")


async def test_forms_are_limited_per_address(make_settings: MakeSettings, stub: PublicStub) -> None:
    settings = make_settings(**_behind(stub, CRM_RATE_LIMIT_FORMS="2/minute"))
    async with running_gateway(settings) as api:
        answers = [
            await api.http.post("/public/forms/contact-us", json={"email": "a@example.com"})
            for _ in range(3)
        ]
        # Links and pages have a budget of their own.
        pixel = await api.http.get("/public/o/x")
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert int(answers[2].headers["retry-after"]) > 0
    assert answers[0].headers["ratelimit-limit"] == "2"
    assert pixel.status_code == 200


async def test_provider_callbacks_are_forwarded_raw(public: Api, stub: PublicStub) -> None:
    raw = b'{"id":"m-1","status":"delivered","sig":"x"}'
    ok = await public.http.post(
        f"/public/callbacks/sms/smsc/{STUB_CALLBACK_SECRET}",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert ok.status_code == 204
    assert stub.received[-1]["body"] == raw.decode()
    assert stub.received[-1]["kind"] == "sms:smsc"
    bounce = await public.http.post(
        f"/public/callbacks/email/{STUB_CALLBACK_SECRET}",
        content=b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n...",
        headers={"Content-Type": "message/rfc822"},
    )
    assert bounce.status_code == 204
    assert stub.received[-1]["headers"]["content-type"] == "message/rfc822"
    wrong = await public.http.post("/public/callbacks/email/guess", content=b"x")
    assert wrong.status_code == 404


async def test_pages_say_unavailable_when_the_service_is_down(api: Api) -> None:
    response = await api.http.get("/public/u/some-token?lang=en")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.text
    pixel = await api.http.get("/public/o/some-token")
    assert pixel.status_code == 200 and pixel.content == PIXEL


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="TEST_REDIS_URL not set")
async def test_the_form_limit_holds_across_gateways_sharing_redis(
    make_settings: MakeSettings, stub: PublicStub
) -> None:
    settings = make_settings(
        **_behind(
            stub,
            REDIS_URL=os.environ["TEST_REDIS_URL"],
            CRM_REDIS_PREFIX=f"test:{uuid.uuid4().hex}:",
            CRM_RATE_LIMIT_FORMS="3/minute",
        )
    )
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        statuses = [
            (
                await gateway.http.post("/public/forms/contact-us", json={"email": "a@example.com"})
            ).status_code
            for gateway in (first, second, first, second)
        ]
    assert statuses == [202, 202, 202, 429]
