"""What one gateway process holds besides the kernel's runtime, and its dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from crm_gateway.apikeys.access import API_KEY_STATE, ApiKeys
from crm_gateway.auth.guard import SessionGuard
from crm_gateway.auth.throttle import LoginThrottle
from crm_gateway.caller import PRINCIPAL_STATE, VerifiedTokens
from crm_gateway.idempotency.store import (
    DatabaseIdempotencyStore,
    IdempotencyStore,
    RedisIdempotencyStore,
)
from crm_gateway.limits import RateLimits
from crm_gateway.openapi import OpenApiMerger
from crm_gateway.overviews.breaker import Breakers
from crm_gateway.settings import GatewaySettings
from crm_gateway.upstreams import Upstreams
from crm_kernel.app import Runtime
from crm_kernel.auth import Principal, TokenKeys, bearer_token
from crm_kernel.problems import Unauthorized


@dataclass
class Gateway:
    """The gateway's own parts: keys, session guard, rate limits, login throttle, upstreams."""

    settings: GatewaySettings
    keys: TokenKeys
    guard: SessionGuard
    limits: RateLimits
    throttle: LoginThrottle
    upstreams: Upstreams
    openapi: OpenApiMerger
    api_keys: ApiKeys
    tokens: VerifiedTokens
    breakers: Breakers
    idempotency: IdempotencyStore | None = None

    async def start(self, runtime: Runtime) -> None:
        """Start-up hook: open the upstream pool and the idempotency store."""
        await self.upstreams.start()
        # An in-progress marker outlives any forwarded call (then a dead replica's expires).
        lock_ttl = 2 * self.settings.upstream_timeout + 30
        ttl = self.settings.idempotency_ttl_seconds
        if self.settings.redis_url:
            self.idempotency = RedisIdempotencyStore.from_url(
                self.settings.redis_url,
                prefix=f"{self.settings.redis_prefix}idempotency:",
                ttl=ttl,
                lock_ttl=lock_ttl,
            )
        else:
            self.idempotency = DatabaseIdempotencyStore(runtime.db, ttl=ttl, lock_ttl=lock_ttl)

    async def stop(self, runtime: Runtime) -> None:
        """Shutdown hook: close the upstream pool and the Redis connections."""
        await self.upstreams.close()
        await self.throttle.limiter.close()
        if self.idempotency is not None:
            await self.idempotency.close()
            self.idempotency = None

    async def upstream_health(self, runtime: Runtime) -> dict[str, str]:
        """Readiness check: every service behind the gateway answers its /healthz.

        A gateway that cannot reach a service would only answer 502s for its
        share of the API, so it takes no traffic until all of them answer.
        """
        return await self.upstreams.health()


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def session_principal(request: Request) -> Principal:
    """The verified caller whose session is still live (replaces the kernel's `current_principal`).

    Installed as an override of the kernel's dependency, so `CurrentUser`,
    `AdminUser` and `require_roles` on every gateway route check the session too.
    """
    gateway = get_gateway(request)
    token = bearer_token(request)
    # The rate limiter has usually verified this token already.
    verified = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if verified is not None and verified[0] == token:
        principal: Principal = verified[1]
    else:
        principal = gateway.tokens.verify(token)
    if "api_key_id" in principal.claims:
        # Minted by this gateway for an API key it has just checked, in this
        # request; the same token presented from outside has no such mark.
        if request.scope.get("state", {}).get(API_KEY_STATE) != principal.claims["api_key_id"]:
            raise Unauthorized("This token is for the gateway's own use.")
        return principal
    await gateway.guard.ensure_live(request.app.state.db, principal)
    return principal


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn has already applied trusted proxy headers)."""
    return request.client.host if request.client else "unknown"
