"""What one gateway process holds besides the kernel's runtime, and its dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from crm_gateway.auth.guard import SessionGuard
from crm_gateway.auth.throttle import LoginThrottle
from crm_gateway.openapi import OpenApiMerger
from crm_gateway.settings import GatewaySettings
from crm_gateway.upstreams import Upstreams
from crm_kernel.app import Runtime
from crm_kernel.auth import Principal, TokenKeys, bearer_token


@dataclass
class Gateway:
    """The gateway's own parts: keys, session guard, login throttle, upstream client."""

    settings: GatewaySettings
    keys: TokenKeys
    guard: SessionGuard
    throttle: LoginThrottle
    upstreams: Upstreams
    openapi: OpenApiMerger

    async def start(self, runtime: Runtime) -> None:
        """Start-up hook: open the upstream pool."""
        await self.upstreams.start()

    async def stop(self, runtime: Runtime) -> None:
        """Shutdown hook: close the upstream pool and the limiter's connection."""
        await self.upstreams.close()
        await self.throttle.limiter.close()

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
    principal = gateway.keys.verify(bearer_token(request))
    await gateway.guard.ensure_live(request.app.state.db, principal)
    return principal


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn has already applied trusted proxy headers)."""
    return request.client.host if request.client else "unknown"
