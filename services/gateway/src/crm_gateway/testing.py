"""Test support for the gateway: a client of a running gateway, a stand-in upstream, bus reads.

Used by the gateway's tests and by end-to-end tests; like `crm_kernel.testing`
it needs the dev dependencies (httpx, pytest) and is never imported by the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from crm_kernel.events import Envelope
from crm_kernel.signing import BadToken, Signer
from crm_kernel.testing import TEST_JWT_SECRET, free_port, serve_in_process, wait_until

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-0001"  # noqa: S105 - test credentials
USER_PASSWORD = "user-password-0001"  # noqa: S105 - test credentials
SERVICES = ("contacts", "deals", "campaigns", "notifications", "reports")


def dead_url() -> str:
    """A URL nobody listens on (a free port, left free)."""
    return f"http://127.0.0.1:{free_port()}"


def gateway_settings(
    *, db_url: str, nats_url: str, data_dir: str, **overrides: Any
) -> GatewaySettings:
    """Settings for a test gateway: test signing secret, bootstrapped admin, no upstream reachable."""
    values: dict[str, Any] = {
        "CRM_JWT_SECRET": TEST_JWT_SECRET,
        "CRM_DATA_DIR": data_dir,
        "DATABASE_URL": db_url,
        "NATS_URL": nats_url,
        "REDIS_URL": "",
        "CRM_ADMIN_EMAIL": ADMIN_EMAIL,
        "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "UPSTREAM_TIMEOUT": 5,
        **{f"{service.upper()}_URL": dead_url() for service in SERVICES},
    }
    values.update(overrides)
    return GatewaySettings(**values)


@dataclass
class Api:
    """A client of one running gateway, with helpers for the usual steps."""

    http: httpx.AsyncClient
    settings: GatewaySettings
    tokens: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def login(self, email: str, password: str = USER_PASSWORD) -> dict[str, Any]:
        """The token pair of a successful login (fails the test otherwise)."""
        response = await self.http.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def admin_headers(self) -> dict[str, str]:
        if "admin" not in self.tokens:
            self.tokens["admin"] = (await self.login(ADMIN_EMAIL, ADMIN_PASSWORD))["access_token"]
        return self.bearer(self.tokens["admin"])

    async def create_user(self, email: str, role: str = "sales_rep", **extra: Any) -> dict:
        """A new user (password USER_PASSWORD), created by the admin."""
        response = await self.http.post(
            "/api/v1/users",
            json={
                "email": email,
                "full_name": email.split("@")[0].title(),
                "role": role,
                "password": USER_PASSWORD,
                **extra,
            },
            headers=await self.admin_headers(),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def user_headers(self, email: str, role: str = "sales_rep", **extra: Any) -> dict:
        """Create a user and log in as them: their Authorization header."""
        await self.create_user(email, role, **extra)
        return self.bearer((await self.login(email))["access_token"])


@contextlib.asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[Api]:
    """The gateway served over real HTTP in this event loop, and a client of it."""
    async with (
        serve_in_process(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield Api(http=http, settings=settings)


async def stream_envelopes(nats_url: str, stream: str = "CRM_GATEWAY") -> list[Envelope]:
    """Every message stored in a stream, in order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        envelopes = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            if message.data:
                envelopes.append(Envelope.from_bytes(message.data))
        return envelopes
    finally:
        await nc.close()


async def pending_outbox_rows(db_url: str) -> int:
    """Outbox rows the relay has not published yet."""
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
            return int(count or 0)
    finally:
        await engine.dispose()


class ContactRead(BaseModel):
    id: str
    first_name: str


BIG_EXPORT_ROWS = 40_000


@dataclass
class Echo:
    """A running stand-in service and what it received, request by request."""

    url: str
    received: list[dict[str, Any]]


def echo_app(received: list[dict[str, Any]]) -> FastAPI:
    """A stand-in service that answers with what it received (status from `?status=`)."""
    app = FastAPI(openapi_url="/api/v1/openapi.json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/contacts/{contact_id}", tags=["contacts"])
    async def get_contact(contact_id: str) -> ContactRead:
        return ContactRead(id=contact_id, first_name="Ada")

    @app.get("/api/v1/exports/big")
    async def big_export() -> StreamingResponse:
        async def rows() -> AsyncIterator[bytes]:
            for i in range(BIG_EXPORT_ROWS):
                yield f"{i:08d},a row of the big export\n".encode()

        return StreamingResponse(rows(), media_type="text/csv")

    @app.get("/api/v1/internal/ping")
    async def internal_ping() -> dict[str, str]:
        return {"status": "not for the public API"}

    @app.api_route(
        "/api/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def echo(request: Request, path: str) -> JSONResponse:
        seen = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": dict(request.headers),
            "body": (await request.body()).decode(),
        }
        received.append(seen)
        return JSONResponse(
            seen,
            status_code=int(request.query_params.get("status", "200")),
            headers={
                "ETag": '"7"',
                "RateLimit-Limit": "100",
                "X-Internal-Secret": "not for clients",
            },
        )

    return app


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts requests and never answers (for timeouts)."""
    handlers: set[asyncio.Task[Any]] = set()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            handlers.add(task)
        try:
            await reader.read()  # until the client gives up
        finally:
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


@dataclass
class SseReader:
    """What one server-sent-events connection received so far."""

    events: list[dict[str, Any]] = field(default_factory=list)
    last_id: str | None = None
    comments: list[str] = field(default_factory=list)
    status: int | None = None
    ended: bool = False  # the server closed the stream

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]


async def _read_sse(response: httpx.Response, reader: SseReader) -> None:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            reader.comments.append(line[1:].strip())
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        else:
            if "id" in fields:
                reader.last_id = fields["id"]
            if "data" in fields:
                reader.events.append(orjson.loads(fields["data"]))
            fields = {}
    reader.ended = True


@contextlib.asynccontextmanager
async def sse_connection(
    http: httpx.AsyncClient,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[SseReader]:
    """A live `GET /api/v1/stream`, read in the background until the block ends."""
    reader = SseReader()
    async with http.stream("GET", "/api/v1/stream", headers=headers, params=params) as response:
        reader.status = response.status_code
        task = asyncio.create_task(_read_sse(response, reader))
        try:
            if response.status_code == 200:
                await wait_until(lambda: "connected" in reader.comments, message="stream start")
            yield reader
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


STUB_SIGNING_SECRET = "stub-signing-secret-0123456789"  # noqa: S105 - test value
STUB_CALLBACK_SECRET = "callback-secret"  # noqa: S105 - test value


@dataclass
class PublicStub:
    """Stands in for the services' /public endpoints (public-routes.md) until they exist."""

    url: str
    received: list[dict[str, Any]]
    signer_secret: str = STUB_SIGNING_SECRET

    def token(self, purpose: str, **data: Any) -> str:
        return Signer(self.signer_secret, purpose).sign(data)


def public_stub_app(received: list[dict[str, Any]]) -> FastAPI:
    """The services' side of the public routes, verifying tokens as they will."""
    app = FastAPI()
    unsubscribed: set[str] = set()
    registered: set[str] = set()

    def data_of(purpose: str, token: str) -> dict[str, Any]:
        try:
            return Signer(STUB_SIGNING_SECRET, purpose).verify(token)
        except BadToken as exc:
            raise HTTPException(404, "Not found") from exc

    async def record(request: Request, kind: str) -> None:
        received.append(
            {
                "kind": kind,
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": (await request.body()).decode(),
            }
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/public/open/{token}", status_code=204)
    async def opened(token: str, request: Request) -> None:
        data_of("campaigns.open", token)
        await record(request, "open")

    @app.get("/public/click/{token}")
    async def clicked(token: str, request: Request) -> dict[str, Any]:
        data = data_of("campaigns.click", token)
        await record(request, "click")
        return {"url": data["url"]}

    @app.get("/public/unsubscribe/{token}")
    async def unsubscribe_info(token: str) -> dict[str, Any]:
        data = data_of("campaigns.unsubscribe", token)
        return {
            "channel": "email",
            "address": data["address"],
            "unsubscribed": data["address"] in unsubscribed,
        }

    @app.post("/public/unsubscribe/{token}")
    async def unsubscribe(token: str, request: Request) -> dict[str, Any]:
        data = data_of("campaigns.unsubscribe", token)
        await record(request, "unsubscribe")
        unsubscribed.add(data["address"])
        return {"unsubscribed": True}

    @app.get("/public/events/{token}")
    async def event_info(token: str) -> dict[str, Any]:
        data = data_of("campaigns.event", token)
        return {
            "name": data["name"],
            "starts_at": "2026-12-10T15:00:00+00:00",
            "place": "Moscow, Tverskaya 1",
            "seats_left": data["seats"],
            "registered": token in registered,
        }

    @app.post("/public/events/{token}/register")
    async def register(token: str) -> JSONResponse:
        data = data_of("campaigns.event", token)
        if data["seats"] == 0:
            return JSONResponse({"title": "Event is full", "status": 409}, status_code=409)
        registered.add(token)
        return JSONResponse({"registered": True})

    @app.get("/public/orders/{token}")
    async def order(token: str) -> dict[str, Any]:
        data = data_of("deals.order", token)
        return {
            "number": data["number"],
            "status": "shipped",
            "status_history": [
                {"status": "created", "at": "2026-11-20T10:00:00+00:00"},
                {"status": "shipped", "at": "2026-11-25T12:30:00+00:00"},
            ],
            "total": "1250.00",
            "currency": "RUB",
            "updated_at": "2026-11-25T12:30:00+00:00",
        }

    @app.post("/public/forms/{form_key}", status_code=202)
    async def form(form_key: str, request: Request) -> JSONResponse:
        if form_key != "contact-us":
            return JSONResponse({"title": "Not found", "status": 404}, status_code=404)
        await record(request, "form")
        lead = orjson.loads(await request.body())
        if "@" not in str(lead.get("email", "")):
            return JSONResponse(
                {
                    "title": "Unprocessable",
                    "status": 422,
                    "errors": [{"field": "email", "location": "body", "message": "not an e-mail"}],
                },
                status_code=422,
                media_type="application/problem+json",
            )
        return JSONResponse({"received": True}, status_code=202)

    @app.post("/public/callbacks/sms/{provider}/{secret}")
    async def sms(provider: str, secret: str, request: Request) -> Response:
        if secret != STUB_CALLBACK_SECRET:
            return JSONResponse({"title": "Not found", "status": 404}, status_code=404)
        await record(request, f"sms:{provider}")
        return Response(status_code=204)

    @app.post("/public/callbacks/email/{secret}")
    async def email(secret: str, request: Request) -> Response:
        if secret != STUB_CALLBACK_SECRET:
            return JSONResponse({"title": "Not found", "status": 404}, status_code=404)
        await record(request, "email")
        return Response(status_code=204)

    return app


def audit_stub_app(entries: list[dict[str, Any]] | None) -> FastAPI:
    """A service's `GET /api/v1/audit` (newest first, offset cursor); None: it has none (404)."""
    app = FastAPI()

    @app.get("/api/v1/audit")
    async def audit(
        limit: int = 50, cursor: str | None = None, actor_id: str | None = None
    ) -> JSONResponse:
        if entries is None:
            return JSONResponse({"title": "Not found", "status": 404}, status_code=404)
        chosen = [e for e in entries if actor_id is None or e["actor_id"] == actor_id]
        chosen.sort(key=lambda e: e["at"], reverse=True)
        start = int(cursor or 0)
        page = chosen[start : start + limit]
        more = start + limit < len(chosen)
        return JSONResponse({"items": page, "next_cursor": str(start + limit) if more else None})

    return app
