"""Calls to a service's unauthenticated /public endpoints, with the caller's address."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from fastapi import Request

from crm_gateway.proxy import request_headers
from crm_gateway.state import Gateway

log = logging.getLogger(__name__)

# What a service's public endpoint gets: never the caller's credentials.
FORWARDED = ("content-type", "user-agent", "x-forwarded-for", "x-request-id", "accept-language")


@dataclass(frozen=True)
class Answer:
    """A service's answer; `status` None when it could not be reached or timed out."""

    status: int | None
    body: bytes = b""
    content_type: str | None = None

    def json(self) -> dict[str, Any] | None:
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None


def segment(value: str) -> str:
    """A path segment passed on unchanged (tokens are URL-safe; anything else is quoted)."""
    return quote(value, safe="")


async def call(
    gateway: Gateway,
    request: Request,
    service: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    timeout: float | None = None,
) -> Answer:
    """`method path` on the service; unreachable, timed out and 5xx are logged."""
    headers = {k: v for k, v in request_headers(request).items() if k in FORWARDED}
    if content_type is not None:
        headers["content-type"] = content_type
    options: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout)} if timeout else {}
    try:
        async with gateway.upstreams.session.request(
            method,
            gateway.upstreams.url(service) + path,
            data=body,
            headers=headers,
            allow_redirects=False,
            **options,
        ) as response:
            answer = Answer(response.status, await response.read(), response.content_type)
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("%s public endpoint %s failed: %r", service, path, exc)
        return Answer(None)
    if answer.status is not None and answer.status >= 500:
        log.warning("%s public endpoint %s answered %s", service, path, answer.status)
    return answer
