"""A campaign through the real stack: contacts -> segment -> campaigns -> notifications -> SMTP,
with personalisation, tracking links that resolve through the gateway, unsubscribe headers,
and opens and clicks counted once per recipient in the unique figures. Mid-send, the
campaigns service and the notifications worker are both killed -9 and restarted: every
recipient still gets the message, and a second copy only where notifications counted an
uncertain attempt (killed between the SMTP server's acceptance and its own record)."""

from __future__ import annotations

import email
import email.message
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from crm_kernel.testing import NatsServer
from e2e_helpers import ADMIN_EMAIL, ADMIN_PASSWORD, login, wait_for
from stack import SERVICES, Stack, StackConfig, free_port

RECIPIENTS = 1000
# Contacts go in through the public API by concurrent POSTs, this many at a time.
POOL = 8
TRACKED = re.compile(r"(/public/[ocu]/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def mail_stack(tmp_dir: Path, smtp: tuple[Inbox, int]) -> Iterator[Stack]:
    server = NatsServer(tmp_dir / "nats")
    server.start()
    config = StackConfig(
        data_dir=tmp_dir / "data",
        ports={name: free_port() for name in SERVICES},
        nats_url=server.url,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        env={
            "SMTP_URL": f"smtp://127.0.0.1:{smtp[1]}",
            # One user loads the whole audience: above the gateway's per-user defaults.
            "CRM_RATE_LIMIT_WRITES": "100000/minute",
            "CRM_RATE_LIMIT_READS": "100000/minute",
            # Messages a killed worker left `sending` are re-queued 5 s later, not 2 minutes.
            "CRM_NOTIFY_LEASE_SECONDS": "5",
        },
    )
    running = Stack(config)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        server.stop()


def _html(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _create_contact(api: httpx.Client, headers: dict[str, str], i: int) -> str:
    created = api.post(
        "/contacts",
        json={
            "first_name": f"Имя{i}",
            "email": f"person{i}@example.org",
            "tags": ["spring"],
            "consent": {"email": True},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _wait_until_replicated(known: Callable[[str], bool], contact_ids: list[str]) -> None:
    """Poll (with the same bounded pool) until `known` holds for every contact."""
    missing = list(contact_ids)

    def done() -> bool:
        with ThreadPoolExecutor(POOL) as pool:
            found = list(pool.map(known, missing))
        missing[:] = [c for c, ok in zip(missing, found, strict=True) if not ok]
        return not missing

    wait_for(done, timeout=120, message="contacts in the campaigns replica")


def _restart(stack: Stack, name: str) -> None:
    stack.start_service(name)
    stack.wait_healthy(name)


def _uncertain_attempts(api: httpx.Client, headers: dict[str, str]) -> int:
    """Sends notifications may have repeated: killed after the SMTP server's acceptance."""
    total, cursor = 0, None
    for _ in range(RECIPIENTS):  # bounded: pages of 200
        params: dict[str, Any] = {"source_type": "campaign", "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/notifications", params=params, headers=headers)
        assert page.status_code == 200, page.text
        total += sum(n["uncertain_attempts"] for n in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            return total
    raise AssertionError("more pages than notifications")


def test_campaign_reaches_smtp_with_tracking_and_unsubscribe(
    mail_stack: Stack, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    gateway_url = mail_stack.config.gateway_url
    with httpx.Client(base_url=f"{gateway_url}/api/v1", timeout=30) as api:
        headers = login(api)
        with ThreadPoolExecutor(POOL) as pool:
            contact_ids = list(
                pool.map(lambda i: _create_contact(api, headers, i), range(RECIPIENTS))
            )
        segment = api.post(
            "/segments",
            json={
                "name": "Spring",
                "kind": "dynamic",
                "filter": {"field": "tags", "op": "has", "value": "spring"},
            },
            headers=headers,
        )
        assert segment.status_code == 201, segment.text
        template = api.post(
            "/templates",
            json={
                "name": "Spring",
                "channel": "email",
                "subject": "Весна для {{ contact.first_name | default('клиента') }}",
                "body_html": "<p>Привет, {{ contact.first_name }}!</p>"
                '<a href="https://shop.example/spring">Каталог</a>',
                "body_text": "Привет, {{ contact.first_name }}! {{ unsubscribe_url }}",
            },
            headers=headers,
        )
        assert template.status_code == 201, template.text
        # The campaigns replica has the contacts once the preview finds every one.
        _wait_until_replicated(
            lambda contact_id: (
                api.post(
                    f"/templates/{template.json()['id']}/preview",
                    json={"contact_id": contact_id},
                    headers=headers,
                ).status_code
                == 200
            ),
            contact_ids,
        )
        campaign = api.post(
            "/campaigns",
            json={
                "name": "Spring",
                "template_id": template.json()["id"],
                "segment_id": segment.json()["id"],
                # 10 s of handing over: the kills below land mid-send.
                "rate_per_second": 100,
            },
            headers=headers,
        )
        assert campaign.status_code == 201, campaign.text
        campaign_id = campaign.json()["id"]
        sent = api.post(f"/campaigns/{campaign_id}/send", headers=headers)
        assert sent.status_code == 200, sent.text
        assert sent.json()["progress"]["audience"] == RECIPIENTS
        wait_for(lambda: len(inbox.messages) >= 100, timeout=120, message="first mail")
        mail_stack.stop_service("campaigns", kill=True)
        mail_stack.stop_service("notifications", kill=True)
        assert len(inbox.messages) < RECIPIENTS, "the kills came after the last message"
        _restart(mail_stack, "notifications")
        _restart(mail_stack, "campaigns")
        everyone = {f"person{i}@example.org" for i in range(RECIPIENTS)}
        wait_for(
            lambda: {str(m["To"]) for m in inbox.messages} >= everyone,
            timeout=300,
            message="mail to every recipient",
        )
        wait_for(
            lambda: (
                api.get(f"/campaigns/{campaign_id}", headers=headers).json()["status"] == "sent"
            ),
            timeout=60,
            message="campaign sent",
        )
        received = Counter(str(m["To"]) for m in inbox.messages)
        assert set(received) == everyone
        duplicates = sum(received.values()) - len(received)
        assert duplicates <= _uncertain_attempts(api, headers)
        first = next(m for m in inbox.messages if str(m["To"]) == "person0@example.org")
        assert str(first["Subject"]) == "Весна для Имя0"
        assert "Привет, Имя0!" in _html(first)
        assert "/public/u/" in str(first["List-Unsubscribe"])
        assert str(first["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        links = {path[8]: path for path in TRACKED.findall(_html(first))}
    with httpx.Client(base_url=gateway_url, timeout=30) as public:
        for _ in range(2):
            pixel = public.get(links["o"])
            assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
            click = public.get(links["c"], follow_redirects=False)
            assert click.status_code == 302
            assert click.headers["location"] == "https://shop.example/spring"
        unsubscribe = str(first["List-Unsubscribe"]).strip("<>")
        page = public.get(unsubscribe)
        assert page.status_code == 200
        assert public.post(unsubscribe, content=b"List-Unsubscribe=One-Click").status_code == 200
    with httpx.Client(base_url=f"{gateway_url}/api/v1", timeout=30) as api:

        def unique_figures() -> dict[str, Any] | None:
            stats = api.get(f"/campaigns/{campaign_id}/stats", headers=headers).json()
            totals = stats["totals"]
            return totals if totals["unsubscribed"] == 1 else None

        totals = wait_for(unique_figures, timeout=30, message="stats")
        assert (totals["opened"], totals["opens_total"]) == (1, 2)
        assert (totals["clicked"], totals["clicks_total"]) == (1, 2)
        assert totals["sent"] == RECIPIENTS
