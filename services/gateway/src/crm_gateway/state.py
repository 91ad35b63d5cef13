"""What one gateway process holds besides the kernel's runtime, and its dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from crm_gateway.apikeys.access import API_KEY_STATE, ApiKeys
from crm_gateway.auth.guard import SessionGuard
from crm_gateway.auth.service import SETUP_CLAIM
from crm_gateway.auth.throttle import LoginThrottle
from crm_gateway.auth.totp import TotpSecrets
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
from crm_gateway.stream.hub import Hub
from crm_gateway.upstreams import Upstreams
from crm_kernel.app import API_PREFIX, Runtime
from crm_kernel.auth import Principal, TokenKeys, bearer_token
from crm_kernel.problems import Forbidden, Unauthorized


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
    hub: Hub
    totp: TotpSecrets
    idempotency: IdempotencyStore | None = None

    async def start(self, runtime: Runtime) -> None:
        """Start-up hook: open the upstream pool and the idempotency store."""
        await self.upstreams.start()
        await self.hub.start(runtime.bus)
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
        await self.hub.stop()
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
    ensure_setup_done(principal, request.url.path)
    return principal


# What a token of a user who still has to set up 2FA may reach.
SETUP_PATHS = (f"{API_PREFIX}/me/2fa", f"{API_PREFIX}/auth/")


def ensure_setup_done(principal: Principal, path: str) -> None:
    """403 for anything but 2FA setup and auth while the role's required 2FA is not set up."""
    if principal.claims.get(SETUP_CLAIM) and not path.startswith(SETUP_PATHS):
        raise TwoFactorSetupRequired(
            "Your role requires two-factor authentication: set it up at /me/2fa, then log in again."
        )


class TwoFactorSetupRequired(Forbidden):
    slug = "two-factor-setup-required"


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn has already applied trusted proxy headers)."""
    return request.client.host if request.client else "unknown"
