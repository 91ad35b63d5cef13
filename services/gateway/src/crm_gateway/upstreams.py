"""The services behind the gateway: which owns which resource, and the pooled HTTP client."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from crm_gateway.settings import GatewaySettings
from crm_kernel.app import API_PREFIX
from crm_kernel.telemetry import instrument_http_client

log = logging.getLogger(__name__)

# The first path segment under /api/v1 -> the service that owns it (SPEC section 3).
ROUTES: dict[str, str] = {
    **dict.fromkeys(
        (
            "contacts",
            "companies",
            "activities",
            "requests",
            "tasks",
            "segments",
            "imports",
            "exports",
            "leads",
            "lead-rules",
            "custom-fields",
        ),
        "contacts",
    ),
    **dict.fromkeys(
        ("pipelines", "deals", "products", "proposals", "orders", "automations"), "deals"
    ),
    **dict.fromkeys(("templates", "campaigns", "events", "sequences"), "campaigns"),
    # `me` is /me/notifications: a user's own notices.
    **dict.fromkeys(("notifications", "webhooks", "me"), "notifications"),
    "reports": "reports",
    # /audit is the gateway's own: every service's audit merged (audit/).
}


def owner_of_path(path: str) -> str | None:
    """The service owning an /api/v1/<resource>/... path, if any."""
    resource = path.removeprefix(API_PREFIX + "/").split("/", 1)[0]
    return ROUTES.get(resource)


class Upstreams:
    """One pooled, keep-alive aiohttp session for every call to the services."""

    def __init__(self, settings: GatewaySettings):
        self.urls = settings.upstream_urls()
        self.timeout = settings.upstream_timeout
        self.pool_size = settings.upstream_pool_size
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the upstream client is not started")
        return self._session

    async def start(self) -> None:
        """Open the pool (inside the running loop, as aiohttp requires)."""
        # Before the session exists, so every request carries `traceparent`.
        instrument_http_client()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.pool_size,
                limit_per_host=0,
                keepalive_timeout=30,
                ttl_dns_cache=60,
            ),
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(self.timeout, 5)),
            # A gateway must never carry one caller's cookies into another's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            raise_for_status=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, service: str) -> str:
        return self.urls[service]

    async def healthy(self, service: str, *, timeout: float = 2.0) -> str:
        """`ok` if the service's /healthz answers 200, otherwise what went wrong."""
        try:
            async with self.session.get(
                f"{self.urls[service]}/healthz", timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                return "ok" if response.status == 200 else f"status {response.status}"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError as exc:
            return f"unreachable: {type(exc).__name__}"

    async def health(self) -> dict[str, str]:
        """Every service's health, checked at once."""
        services = list(self.urls)
        results = await asyncio.gather(*(self.healthy(s) for s in services))
        return dict(zip(services, results, strict=True))
