"""The gateway: the only public entry (auth, users and teams, routing to the services)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

import crm_gateway
from crm_gateway import openapi, proxy
from crm_gateway.apikeys.access import ApiKeyMiddleware, ApiKeys
from crm_gateway.apikeys.routes import router as api_keys_router
from crm_gateway.audit.routes import router as audit_router
from crm_gateway.auth.guard import SessionGuard
from crm_gateway.auth.routes import router as auth_router
from crm_gateway.auth.throttle import LoginThrottle
from crm_gateway.auth.totp import TotpSecrets, totp_key
from crm_gateway.auth.totp_routes import router as totp_router
from crm_gateway.caller import VerifiedTokens
from crm_gateway.hardening import BodyLimitMiddleware, SecurityHeadersMiddleware
from crm_gateway.idempotency.middleware import IdempotencyMiddleware
from crm_gateway.limits import RateLimitMiddleware, RateLimits
from crm_gateway.openapi import OpenApiMerger
from crm_gateway.overviews.breaker import Breakers
from crm_gateway.overviews.routes import router as overviews_router
from crm_gateway.public.routes import router as public_router
from crm_gateway.ratelimit import Limiter, MemoryLimiter, RedisLimiter
from crm_gateway.settings import GatewaySettings
from crm_gateway.state import Gateway, session_principal
from crm_gateway.stream.hub import Hub
from crm_gateway.stream.routes import router as stream_router
from crm_gateway.teams.routes import router as teams_router
from crm_gateway.upstreams import Upstreams
from crm_gateway.users.routes import router as users_router
from crm_gateway.users.service import bootstrap_admin
from crm_kernel.app import API_PREFIX, Runtime, create_service_app
from crm_kernel.auth import TokenKeys, current_principal
from crm_kernel.migrate import service_migrations
from crm_kernel.server import serve


def token_keys(settings: GatewaySettings) -> TokenKeys:
    """The gateway's keys: it alone can sign (RS256 with a private key, else HS256)."""
    return TokenKeys(
        secret=settings.jwt_secret,
        private_key=settings.jwt_private_key,
        public_key=settings.jwt_public_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def _limiter(settings: GatewaySettings) -> Limiter:
    if settings.redis_url:
        return RedisLimiter.from_url(settings.redis_url, prefix=f"{settings.redis_prefix}limit:")
    return MemoryLimiter()


def _serve_first(app: FastAPI, path: str, endpoint: Callable[..., Any]) -> None:
    """Serve `path` with `endpoint` ahead of the routes FastAPI and the kernel registered there.

    Routes are matched in order, so the first one wins; this replaces FastAPI's
    own OpenAPI document (which would show the gateway's paths only).
    """
    app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.router.routes.insert(0, app.router.routes.pop())


# What a browser may send and read across origins (CRM_CORS_ORIGINS).
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Accept",
    "Accept-Language",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-API-Key",
    "X-Request-ID",
    "Last-Event-ID",
]
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Link",
    "Content-Disposition",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "Idempotent-Replayed",
    "X-Request-ID",
]


def _add_inner_middleware(app: FastAPI, middleware: Middleware) -> None:
    """Add a middleware inside those the kernel added (request ids), so its answers carry one."""
    app.user_middleware.append(middleware)


def _add_outer_middleware(app: FastAPI, middleware: Middleware) -> None:
    """Add a middleware around everything (its answers and headers reach every response)."""
    app.user_middleware.insert(0, middleware)


def _install_middleware(app: FastAPI, settings: GatewaySettings, gateway: Gateway) -> None:
    """The gateway's pure-ASGI middleware, outermost first:

    security headers, CORS, (the kernel's request id), body limit, API keys
    (turned into bearer tokens), rate limits, idempotency. A body too large or a caller over budget is refused before
    anything is buffered for idempotency.
    """
    origins = settings.cors_origin_list()
    if origins:
        _add_outer_middleware(
            app,
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_EXPOSED_HEADERS,
                # Bearer tokens, never cookies: no credentials mode needed.
                allow_credentials=False,
                max_age=600,
            ),
        )
    _add_outer_middleware(
        app,
        Middleware(
            SecurityHeadersMiddleware, https=settings.public_url.lower().startswith("https://")
        ),
    )
    _add_inner_middleware(app, Middleware(BodyLimitMiddleware, limit=settings.max_body_bytes))
    _add_inner_middleware(
        app, Middleware(ApiKeyMiddleware, api_keys=gateway.api_keys, limits=gateway.limits)
    )
    _add_inner_middleware(
        app, Middleware(RateLimitMiddleware, limits=gateway.limits, tokens=gateway.tokens)
    )
    _add_inner_middleware(
        app,
        Middleware(
            IdempotencyMiddleware,
            store=lambda: gateway.idempotency,
            tokens=gateway.tokens,
            max_body=settings.max_body_bytes,
        ),
    )


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    keys = token_keys(settings)
    upstreams = Upstreams(settings)
    # One limiter (one Redis connection pool) for login throttling and rate limits.
    limiter = _limiter(settings)
    gateway = Gateway(
        settings=settings,
        keys=keys,
        guard=SessionGuard(ttl=settings.session_check_seconds),
        limits=RateLimits(limiter, settings.rate_limits()),
        throttle=LoginThrottle(
            limiter,
            per_account=settings.login_max_failures_per_account,
            per_ip=settings.login_max_failures_per_ip,
            window_seconds=settings.login_window_seconds,
        ),
        upstreams=upstreams,
        openapi=OpenApiMerger(upstreams),
        api_keys=ApiKeys(keys, ttl=settings.session_check_seconds),
        tokens=VerifiedTokens(keys),
        breakers=Breakers(
            failures=settings.breaker_failures, cooldown=settings.breaker_cooldown_seconds
        ),
        totp=TotpSecrets(totp_key(settings), issuer=settings.totp_issuer),
        hub=Hub(queue_size=settings.stream_queue_size, replay_limit=settings.stream_replay_limit),
    )

    async def bootstrap(runtime: Runtime) -> None:
        await bootstrap_admin(runtime.db, settings)

    app = create_service_app(
        settings,
        title="CRM API",
        migrations=service_migrations(crm_gateway.__file__),
        # The proxy's catch-all comes last: the gateway's own routes win.
        routers=[
            auth_router,
            totp_router,
            users_router,
            teams_router,
            api_keys_router,
            stream_router,
            audit_router,
            # Composed views are GETs under /contacts and /deals: before the catch-all.
            overviews_router,
            proxy.router,
        ],
        keep_directory=False,
        on_startup=[gateway.start, bootstrap],
        on_shutdown=[gateway.stop],
        readiness={"services": gateway.upstream_health},
        keys=keys,
    )
    app.state.gateway = gateway
    # Outside /api/v1: links in e-mails and forms on websites, for people without a login.
    app.include_router(public_router)
    _install_middleware(app, settings, gateway)
    # Every route that asks for the caller (CurrentUser, AdminUser, require_roles)
    # also gets its session checked: a logged-out token is refused everywhere.
    app.dependency_overrides[current_principal] = session_principal
    # FastAPI's own document would show only the gateway; ours is the merged one.
    _serve_first(app, f"{API_PREFIX}/openapi.json", openapi.openapi_document)
    return app


def run() -> None:
    serve("crm_gateway.main:create_app", GatewaySettings())
