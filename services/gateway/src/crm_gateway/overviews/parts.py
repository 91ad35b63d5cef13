"""Fetching one part of an overview from its service: own timeout, circuit breaker, never raising."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from crm_gateway.overviews.breaker import Breakers
from crm_gateway.upstreams import Upstreams
from crm_kernel.app import API_PREFIX

log = logging.getLogger(__name__)


def unavailable(reason: str) -> dict[str, Any]:
    """What a client gets in place of a part that could not be fetched."""
    return {"unavailable": True, "reason": reason}


def segment(value: str) -> str:
    """An id as one path segment (a `/` or `?` in it cannot reach another route)."""
    return quote(value, safe="")


@dataclass
class Answer:
    """A service's answer: status and JSON body (None if it sent none)."""

    status: int
    body: Any


@dataclass
class Failed:
    """No answer: why (timeout, unreachable, a 5xx, circuit open)."""

    reason: str


class Parts:
    """Calls the services on behalf of one caller, with their headers (and so their visibility)."""

    def __init__(
        self,
        *,
        upstreams: Upstreams,
        breakers: Breakers,
        headers: dict[str, str],
        timeout: float,
    ):
        self.upstreams = upstreams
        self.breakers = breakers
        self.headers = headers
        self.timeout = timeout

    async def get(
        self, service: str, path: str, params: dict[str, str] | None = None
    ) -> Answer | Failed:
        """GET `API_PREFIX + path` from `service`; failures are counted by its breaker."""
        breaker = self.breakers.of(service)
        if not breaker.allow():
            return Failed("circuit open")
        url = f"{self.upstreams.url(service)}{API_PREFIX}{path}"
        try:
            # aiohttp's own timeout covers connecting and reading; the outer one
            # also bounds what it does not (e.g. a slow DNS answer).
            async with asyncio.timeout(self.timeout):
                async with self.upstreams.session.get(
                    url,
                    params=params,
                    headers=self.headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as response:
                    status = response.status
                    content = await response.read()
        except TimeoutError:
            breaker.failed()
            return Failed(f"the {service} service did not answer in time")
        except aiohttp.ClientError as exc:
            breaker.failed()
            log.warning("overview part from %s failed: %r", service, exc)
            return Failed(f"the {service} service is unreachable")
        except BaseException:
            # Cancelled (the whole overview ended early): neither a success nor a failure.
            breaker.abandoned()
            raise
        if status >= 500:
            breaker.failed()
            return Failed(f"the {service} service answered {status}")
        breaker.succeeded()
        try:
            body = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            return Failed(f"the {service} service answered something that is not JSON")
        return Answer(status, body)


def items_or_unavailable(answer: Answer | Failed, *, absent: str | None = None) -> Any:
    """A list part: the items of a page (or the list itself), else why it is missing.

    `absent`: the reason to give for a 404, which from a list route means the
    route itself does not exist (yet).
    """
    if isinstance(answer, Failed):
        return unavailable(answer.reason)
    if answer.status == 200:
        body = answer.body
        if isinstance(body, dict) and isinstance(body.get("items"), list):
            return body["items"]
        return body
    if answer.status == 404 and absent is not None:
        return unavailable(absent)
    return unavailable(f"answered {answer.status}")


def record_or_null(answer: Answer | Failed) -> Any:
    """A linked record: it, null when the caller may not see it (404), else why it is missing."""
    if isinstance(answer, Failed):
        return unavailable(answer.reason)
    if answer.status == 200:
        return answer.body
    if answer.status == 404:
        return None
    return unavailable(f"answered {answer.status}")
