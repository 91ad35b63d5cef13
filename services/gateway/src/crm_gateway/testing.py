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
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from crm_kernel.events import Envelope
from crm_kernel.testing import TEST_JWT_SECRET, free_port, serve_in_process

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
