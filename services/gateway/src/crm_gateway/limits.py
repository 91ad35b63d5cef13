"""Rate limits on every request: per user, API key or client IP, one budget per kind of request."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.caller import VerifiedTokens, caller_id, client_address, verified_caller
from crm_gateway.ratelimit import Limiter, Quota, Rate
from crm_kernel.app import API_PREFIX
from crm_kernel.problems import problem

log = logging.getLogger(__name__)

BUDGETS = ("login", "writes", "reads", "exports", "public", "forms")
# Budgets always counted per client IP (nobody is logged in for them).
IP_BUDGETS = frozenset({"login", "public", "forms"})
_PUBLIC = "/public/"
_FORMS = "/public/forms/"
_LOGIN_PATHS = frozenset({f"{API_PREFIX}/auth/login", f"{API_PREFIX}/auth/refresh"})
_EXPORTS = f"{API_PREFIX}/exports"
_READS = frozenset({"GET", "HEAD"})


def budget_of(method: str, path: str) -> str | None:
    """Which budget a request spends (None: not limited, e.g. health checks and CORS preflights)."""
    if method == "OPTIONS":
        return None
    if path.startswith(_PUBLIC):
        return "forms" if path.startswith(_FORMS) else "public"
    if not path.startswith(API_PREFIX + "/"):
        return None
    if path in _LOGIN_PATHS:
        return "login"
    if path == _EXPORTS or path.startswith(_EXPORTS + "/"):
        return "exports"
    return "reads" if method in _READS else "writes"


class RateLimits:
    """The configured budgets over a `Limiter`; fails open while the limiter's store is down.

    An outage of Redis must not take the API down with it: requests then go
    unlimited (logged), and the store is not asked again for `pause` seconds,
    so a dead Redis does not add its connect timeout to every request.
    """

    def __init__(self, limiter: Limiter, rates: Mapping[str, Rate], *, pause: float = 5.0):
        self.limiter = limiter
        self.rates = {name: rate for name, rate in rates.items() if not rate.unlimited}
        self.pause = pause
        self._paused_until = 0.0

    async def take(self, budget: str, subject: str) -> Quota | None:
        """Spend one request of `subject`'s budget (None: this budget is not limited now)."""
        rate = self.rates.get(budget)
        if rate is None or self._paused_until > time.monotonic():
            return None
        try:
            return await self.limiter.acquire(
                f"rate:{budget}:{subject}", limit=rate.limit, window=rate.window
            )
        except Exception as exc:
            self._paused_until = time.monotonic() + self.pause
            log.warning("rate limiter unavailable, not limiting for %ss: %r", self.pause, exc)
            return None


def rate_headers(quota: Quota, window: float) -> list[tuple[bytes, bytes]]:
    """The IETF draft's `RateLimit-*` headers for a quota."""
    return [
        (b"ratelimit-limit", str(quota.limit).encode()),
        (b"ratelimit-remaining", str(quota.remaining).encode()),
        (b"ratelimit-reset", str(quota.reset).encode()),
        (b"ratelimit-policy", f"{quota.limit};w={int(window)}".encode()),
    ]


class RateLimitMiddleware:
    """Spends one request of the caller's budget before anything else runs (pure ASGI).

    The caller is the user of a valid bearer token, else the client IP; login
    and refresh are always counted per IP. Each caller has their own counter,
    so nobody's traffic can exhaust another's budget.
    """

    def __init__(self, app: ASGIApp, *, limits: RateLimits, tokens: VerifiedTokens):
        self.app = app
        self.limits = limits
        self.tokens = tokens

    def _subject(self, scope: Scope, budget: str) -> str:
        principal = None if budget in IP_BUDGETS else verified_caller(scope, self.tokens)
        return caller_id(principal) if principal else f"ip:{client_address(scope)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = budget_of(scope["method"], scope["path"])
        quota = await self.limits.take(budget, self._subject(scope, budget)) if budget else None
        if quota is None or budget is None:
            await self.app(scope, receive, send)
            return
        window = self.limits.rates[budget].window
        headers = rate_headers(quota, window)
        if not quota.allowed:
            response = problem(
                429,
                "Too many requests",
                f"Over the limit of {quota.limit} {budget} per {int(window)} seconds; "
                f"try again in {quota.retry_after} seconds.",
                slug="rate-limited",
                headers={"Retry-After": str(quota.retry_after)},
            )
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Ours replace any a service sent: the client's budget is the gateway's.
                message["headers"] = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"ratelimit")
                ] + headers
            await send(message)

        await self.app(scope, receive, send_with_limits)
