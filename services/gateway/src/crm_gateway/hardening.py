"""Browser-facing protections: security headers on every answer, a cap on request bodies."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_kernel.app import API_PREFIX
from crm_kernel.problems import problem

# The API answers JSON, never pages to render: nothing may load, run or frame.
API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI (/api/v1/docs) loads its script and styles from a CDN and runs inline code.
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    b"frame-ancestors 'none'; base-uri 'none'"
)
HSTS = b"max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Adds the usual security headers to every answer (pure ASGI); a route's own win."""

    def __init__(self, app: ASGIApp, *, https: bool):
        self.app = app
        base = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if https:
            base.append((b"strict-transport-security", HSTS))
        self.api_headers = [*base, (b"content-security-policy", API_CSP)]
        self.docs_headers = [*base, (b"content-security-policy", DOCS_CSP)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(f"{API_PREFIX}/docs")
        extra = self.docs_headers if docs else self.api_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(Exception):
    """Raised from `receive` once a request body passes the limit."""


class BodyLimitMiddleware:
    """Refuses request bodies over `limit` bytes with a 413 problem (pure ASGI).

    A declared `Content-Length` over the limit is refused before anything
    runs; a body without one (chunked) is counted as it arrives and cut off
    at the limit, so nothing ever holds more than the limit in memory or sends
    more on to a service. Whatever the route was doing then (e.g. a 502 for
    a broken upload), the client gets the 413.
    """

    def __init__(self, app: ASGIApp, *, limit: int):
        self.app = app
        self.limit = limit

    def _refusal(self) -> JSONResponse:
        return problem(
            413,
            "Payload too large",
            f"A request body may be at most {self.limit} bytes.",
            slug="payload-too-large",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    await self._refusal()(scope, receive, send)
                    return
        seen = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The route answered despite the cut-off body: the client gets the 413.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refusal()(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
            if not started:
                started = True
                await self._refusal()(scope, receive, send)
