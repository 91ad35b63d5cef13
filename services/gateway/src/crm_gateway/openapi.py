"""One OpenAPI document for the whole API: the gateway's paths plus every service's."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from fastapi import Request
from fastapi.responses import JSONResponse

from crm_gateway.upstreams import Upstreams, owner_of_path
from crm_kernel.app import API_PREFIX

log = logging.getLogger(__name__)

# Operations anyone may call without a bearer token.
PUBLIC_OPERATIONS = {f"{API_PREFIX}/auth/login", f"{API_PREFIX}/auth/refresh"}


def merge_documents(own: Mapping[str, Any], services: Mapping[str, Mapping[str, Any]]) -> dict:
    """The gateway's document with each service's paths and components added.

    Only paths the gateway routes to that service are taken; on a clash of
    paths or component names the first one wins (the gateway's, then
    services in routing order).
    """
    doc = copy.deepcopy(dict(own))
    paths = doc.setdefault("paths", {})
    components = doc.setdefault("components", {})
    tags = doc.setdefault("tags", [])
    tag_names = {tag.get("name") for tag in tags}
    for service, other in services.items():
        for path, item in (other.get("paths") or {}).items():
            if owner_of_path(path) == service:
                paths.setdefault(path, copy.deepcopy(item))
        for section, entries in (other.get("components") or {}).items():
            target = components.setdefault(section, {})
            for name, value in (entries or {}).items():
                target.setdefault(name, copy.deepcopy(value))
        for tag in other.get("tags") or []:
            if tag.get("name") not in tag_names:
                tags.append(copy.deepcopy(tag))
                tag_names.add(tag.get("name"))
    if not tags:
        del doc["tags"]
    _declare_bearer(doc)
    _declare_gateway_behaviour(doc)
    return doc


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Run this request once: a retry with the same key gets the first answer "
    "(`Idempotent-Replayed: true`) for 24 hours; another request with the key is a 422, "
    "one while the first still runs a 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
TOO_MANY_REQUESTS = {
    "description": "Over the caller's rate limit: problem JSON, with `Retry-After` and "
    "`RateLimit-*` headers.",
}


def _declare_gateway_behaviour(doc: dict[str, Any]) -> None:
    """What the gateway adds to every operation: rate limits, and idempotency on POST and PATCH."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            operation.setdefault("responses", {}).setdefault("429", TOO_MANY_REQUESTS)
            # Keys are kept per caller: calls without a token (login) do not take one.
            if method in ("post", "patch") and path not in PUBLIC_OPERATIONS:
                parameters = operation.setdefault("parameters", [])
                if not any(
                    isinstance(p, dict) and str(p.get("name", "")).lower() == "idempotency-key"
                    for p in parameters
                ):
                    parameters.append(IDEMPOTENCY_KEY)


def _declare_bearer(doc: dict[str, Any]) -> None:
    """Say in the document that calls need a bearer JWT or an API key, except login and refresh."""
    schemes = doc["components"].setdefault("securitySchemes", {})
    schemes["bearerAuth"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    # An API key also goes as `Authorization: Bearer crm_...`.
    schemes["apiKey"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    doc["security"] = [{"bearerAuth": []}, {"apiKey": []}]
    for path in PUBLIC_OPERATIONS:
        for operation in (doc["paths"].get(path) or {}).values():
            if isinstance(operation, dict):
                operation["security"] = []


class OpenApiMerger:
    """Fetches and caches each service's document; one that could not be fetched is retried."""

    def __init__(self, upstreams: Upstreams, *, ttl: float = 300.0, retry_after: float = 5.0):
        self.upstreams = upstreams
        self.ttl = ttl
        self.retry_after = retry_after
        self._docs: dict[str, dict[str, Any]] = {}
        self._due: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._merged: tuple[tuple[int, ...], dict[str, Any]] | None = None

    def _stale(self, now: float) -> list[str]:
        return [s for s in self.upstreams.urls if self._due.get(s, 0.0) <= now]

    async def _fetch(self, service: str) -> dict[str, Any] | None:
        url = f"{self.upstreams.url(service)}{API_PREFIX}/openapi.json"
        try:
            async with self.upstreams.session.get(
                url, timeout=aiohttp.ClientTimeout(total=min(self.upstreams.timeout, 5.0))
            ) as response:
                if response.status != 200:
                    log.warning("openapi of %s: status %s", service, response.status)
                    return None
                doc = await response.json(content_type=None)
                return doc if isinstance(doc, dict) else None
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("openapi of %s unavailable: %s", service, exc)
            return None

    async def refresh(self) -> None:
        """Fetch the documents not yet fetched or older than the TTL (at once, in parallel)."""
        if not self._stale(time.monotonic()):
            return
        async with self._lock:
            stale = self._stale(time.monotonic())
            docs = await asyncio.gather(*(self._fetch(s) for s in stale))
            now = time.monotonic()
            for service, doc in zip(stale, docs, strict=True):
                if doc is not None:
                    self._docs[service] = doc
                    self._due[service] = now + self.ttl
                elif service in self._docs:
                    # Keep the older copy and ask again a little later.
                    self._due[service] = now + self.retry_after
                else:
                    # Never had it: ask again on the next request.
                    self._due[service] = 0.0

    def missing(self) -> list[str]:
        return [s for s in self.upstreams.urls if s not in self._docs]

    async def document(self, own: Mapping[str, Any]) -> dict[str, Any]:
        """The merged document, rebuilt only when a service's document changed."""
        await self.refresh()
        included = {s: self._docs[s] for s in self.upstreams.urls if s in self._docs}
        key = (id(own), *(id(doc) for doc in included.values()))
        if self._merged is None or self._merged[0] != key:
            merged = merge_documents(own, included)
            if self.missing():
                merged["x-unavailable-services"] = self.missing()
            self._merged = (key, merged)
        return self._merged[1]


async def openapi_document(request: Request) -> JSONResponse:
    """The whole public API in one OpenAPI document."""
    merger: OpenApiMerger = request.app.state.gateway.openapi
    return JSONResponse(await merger.document(request.app.openapi()))
