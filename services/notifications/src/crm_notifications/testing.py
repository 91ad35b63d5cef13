"""Test helpers: settings, an SMTP inbox that keeps raw bytes, a Twilio-style API, a webhook endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from crm_kernel.bus import Bus
from crm_kernel.testing import TEST_JWT_SECRET, free_port
from crm_notifications.settings import NotificationsSettings


def settings_for(db_url: str, nats_url: str, tmp_dir: Path, **extra: Any) -> NotificationsSettings:
    return NotificationsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        **extra,
    )


async def events_on(bus: Bus, subject: str) -> int:
    """How many events of `subject` the notifications stream holds."""
    info = await bus.js.stream_info("CRM_NOTIFICATIONS", subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


class RawInbox:
    """aiosmtpd handler keeping each message's envelope and exact bytes."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 OK"


class LocalHttp:
    """A small aiohttp server on a free loopback port."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> LocalHttp:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class TwilioStub(LocalHttp):
    """Speaks the Twilio Messages API: create (basic auth, form-encoded), answers a sid."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid, self.auth_token = account_sid, auth_token
        self.created: list[dict[str, str]] = []
        self.auth: list[str | None] = []
        # Numbers answered with a provider error code (e.g. 21211 invalid "To").
        self.refuse: dict[str, int] = {}
        self.app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)

    def url(self, sender: str = "+15550001111") -> str:
        return f"twilio://{self.account_sid}:{self.auth_token}@127.0.0.1:{self.port}?from={sender}"

    async def _create_message(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.auth.append(request.headers.get("Authorization"))
        if request.match_info["sid"] != self.account_sid:
            return web.json_response({"code": 20404, "message": "not found"}, status=404)
        if form.get("To") in self.refuse:
            code = self.refuse[form["To"]]
            return web.json_response({"code": code, "message": "invalid To"}, status=400)
        self.created.append(form)
        sid = f"SM{len(self.created):032d}"
        return web.json_response({"sid": sid, "status": "queued", "to": form["To"]}, status=201)


class WebhookEndpoint(LocalHttp):
    """Receives webhook POSTs; fails the first `fail_first` of them with 500."""

    def __init__(self, fail_first: int = 0) -> None:
        super().__init__()
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.calls = 0
        self.arrived = asyncio.Event()
        self.app.router.add_post("/hook", self._hook)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.calls <= self.fail_first:
            return web.Response(status=500, text="down")
        self.received.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=204)
