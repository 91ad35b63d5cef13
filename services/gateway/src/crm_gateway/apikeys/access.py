"""Requests made with an API key: verified, checked against the key's scopes, re-signed as a JWT."""

from __future__ import annotations

import time
from datetime import timedelta

from starlette.types import ASGIApp, Receive, Scope, Send

from crm_gateway.apikeys import service
from crm_gateway.apikeys.service import ActingKey, is_api_key
from crm_gateway.caller import bearer, client_address, header
from crm_gateway.limits import RateLimits
from crm_gateway.orm import utcnow
from crm_gateway.upstreams import ROUTES
from crm_kernel.app import API_PREFIX
from crm_kernel.auth import TokenKeys
from crm_kernel.db import Database
from crm_kernel.problems import problem

# Marks a request whose bearer token the gateway minted for an API key, so the
# routes accept that token without a login session (`state.session_principal`).
API_KEY_STATE = "crm_api_key"
TOKEN_LIFETIME = timedelta(minutes=5)
_READS = frozenset({"GET", "HEAD"})


def required_scope(method: str, path: str) -> str | None:
    """The scope a request needs (None: not a resource an API key may reach)."""
    if not path.startswith(API_PREFIX + "/"):
        return None
    resource = path[len(API_PREFIX) + 1 :].split("/", 1)[0]
    if resource not in ROUTES:
        return None
    return f"{resource}:{'read' if method in _READS else 'write'}"


class ApiKeys:
    """Looks keys up (remembered for `ttl` seconds), mints their tokens, records their use.

    A key revoked on this replica is forgotten at once; the other replicas
    see the revocation within `ttl` seconds, as with sessions.
    """

    def __init__(
        self, keys: TokenKeys, *, ttl: float, touch_every: float = 60, max_entries: int = 10_000
    ):
        self.keys = keys
        self.ttl = ttl
        self.touch_every = touch_every
        self.max_entries = max_entries
        self._seen: dict[str, tuple[float, ActingKey | None]] = {}  # key hash -> (until, key)
        self._tokens: dict[ActingKey, tuple[float, str]] = {}  # -> (good until, token)
        self._touched: dict[str, float] = {}

    async def resolve(self, db: Database, key: str) -> ActingKey | None:
        digest = service.key_hash(key)
        now = time.monotonic()
        seen = self._seen.get(digest)
        if seen is None or seen[0] <= now:
            if len(self._seen) >= self.max_entries:
                self._seen.clear()
            seen = (now + self.ttl, await service.acting_key(db, key=key))
            self._seen[digest] = seen
        return seen[1]

    def forget(self, key_id: str) -> None:
        """Drop what is remembered of a key (revoked here)."""
        for digest in [d for d, (_, k) in self._seen.items() if k is not None and k.id == key_id]:
            del self._seen[digest]
        for acting in [k for k in self._tokens if k.id == key_id]:
            del self._tokens[acting]

    def token_for(self, acting: ActingKey) -> str:
        """A short-lived access token for the key's user with its scopes (reused while fresh)."""
        now = time.monotonic()
        cached = self._tokens.get(acting)
        if cached is not None and cached[0] > now:
            return cached[1]
        token, _ = self.keys.issue(
            subject=acting.user_id,
            claims={
                "role": acting.role,
                "team_ids": list(acting.team_ids),
                "email": acting.email,
                "scopes": sorted(acting.scopes),
                "api_key_id": acting.id,
            },
            lifetime=TOKEN_LIFETIME,
        )
        if len(self._tokens) >= self.max_entries:
            self._tokens.clear()
        # Replaced a minute before it expires, so a forwarded one is always valid.
        self._tokens[acting] = (now + TOKEN_LIFETIME.total_seconds() - 60, token)
        return token

    async def touch(self, db: Database, key_id: str) -> None:
        """Record the key's use (at most every `touch_every` seconds per replica)."""
        now = time.monotonic()
        if self._touched.get(key_id, 0.0) > now:
            return
        if len(self._touched) >= self.max_entries:
            self._touched.clear()
        self._touched[key_id] = now + self.touch_every
        await service.touch(db, key_id=key_id, at=utcnow())


class ApiKeyMiddleware:
    """Turns `Authorization: Bearer crm_...` or `X-API-Key: crm_...` into the key user's JWT.

    Unknown or revoked keys are a 401 (and spend the address's login budget,
    then a 429); a request outside the key's scopes, or
    to the gateway's own routes (users, teams, auth), a 403; both before
    anything else runs. The rest of the gateway, and the service the request
    goes to, see an ordinary bearer token whose `scopes` claim says what the
    key may do.
    """

    def __init__(self, app: ASGIApp, *, api_keys: ApiKeys, limits: RateLimits):
        self.app = app
        self.api_keys = api_keys
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        key = header(scope, b"x-api-key") or (token if token and is_api_key(token) else None)
        if key is None:
            await self.app(scope, receive, send)
            return
        db: Database = scope["app"].state.db
        acting = await self.api_keys.resolve(db, key.strip())
        if acting is None:
            # Guessing keys costs the address its login budget, as guessing passwords does.
            quota = await self.limits.take("login", f"ip:{client_address(scope)}")
            if quota is not None and not quota.allowed:
                await problem(
                    429,
                    "Too many requests",
                    "Too many invalid credentials from this address; try again later.",
                    slug="rate-limited",
                    headers={"Retry-After": str(quota.retry_after)},
                )(scope, receive, send)
                return
            await problem(
                401,
                "Not authenticated",
                "The API key is not valid (unknown or revoked).",
                slug="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )(scope, receive, send)
            return
        needed = required_scope(scope["method"], scope["path"])
        if needed is None or needed not in acting.scopes:
            detail = (
                f"This API key lacks the scope {needed}."
                if needed
                else "API keys reach the CRM's resources only, not the gateway's own routes."
            )
            await problem(403, "Forbidden", detail, slug="forbidden")(scope, receive, send)
            return
        minted = f"Bearer {self.api_keys.token_for(acting)}".encode()
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"authorization", b"x-api-key")
        ]
        headers.append((b"authorization", minted))
        scope = dict(scope, headers=headers)
        scope.setdefault("state", {})[API_KEY_STATE] = acting.id
        await self.api_keys.touch(db, acting.id)
        await self.app(scope, receive, send)
