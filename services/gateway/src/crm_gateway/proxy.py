"""Forwarding of /api/v1/<resource>... to the service that owns the resource."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from yarl import URL

from crm_gateway.state import GatewayDep, client_ip
from crm_gateway.upstreams import ROUTES
from crm_kernel.auth import CurrentUser
from crm_kernel.problems import BadGateway, GatewayTimeout, NotFound
from crm_kernel.request_id import current_request_id

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "accept",
    "accept-language",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "user-agent",
)
RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "content-disposition",
        "etag",
        "location",
        "link",
        "retry-after",
        "cache-control",
        "last-modified",
        "www-authenticate",
    }
)
# Bodies up to this size are read whole (exact Content-Length, one write);
# larger or unsized ones stream through in chunks.
BUFFER_LIMIT = 1 << 20


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def request_headers(request: Request) -> dict[str, str]:
    """The caller's headers a service gets (its token among them), plus forwarding ones."""
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    request_id = current_request_id()
    if request_id:
        headers["x-request-id"] = request_id
    peer = client_ip(request)
    earlier = request.headers.get("x-forwarded-for", "").strip()
    if not earlier:
        headers["x-forwarded-for"] = peer
    elif earlier.rsplit(",", 1)[-1].strip() == peer:
        headers["x-forwarded-for"] = earlier
    else:
        headers["x-forwarded-for"] = f"{earlier}, {peer}"
    headers["x-forwarded-proto"] = request.url.scheme
    if "host" in request.headers:
        headers["x-forwarded-host"] = request.headers["host"]
    return headers


def _kept(name: str) -> bool:
    # A service's own RateLimit-* headers are not passed on: the budget a
    # client sees is the gateway's (limits.py), per caller across all services.
    return name.lower() in RESPONSE_HEADERS


async def _relay(upstream: aiohttp.ClientResponse, service: str) -> AsyncIterator[bytes]:
    """The upstream body, chunk by chunk as it arrives."""
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    except (TimeoutError, aiohttp.ClientError) as exc:
        # The status is already sent: all we can do is cut the body short.
        log.warning("%s broke off a streamed response: %r", service, exc)
    finally:
        upstream.release()


def _target(request: Request, base_url: str) -> URL:
    """The same path and query on the service, byte for byte (no re-quoting)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    target = base_url + raw_path.decode("latin-1")
    query = request.scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    return URL(target, encoded=True)


async def _body(request: Request, headers: dict[str, str]) -> bytes | AsyncIterator[bytes] | None:
    """The request body: none, read whole if small, otherwise streamed."""
    length = _content_length(request.headers.get("content-length"))
    if length == 0 or (length is None and "transfer-encoding" not in request.headers):
        return None
    if length is not None and length <= BUFFER_LIMIT:
        return await request.body()
    if length is not None:
        headers["content-length"] = str(length)
    return request.stream()


async def _response(request: Request, upstream: aiohttp.ClientResponse, service: str) -> Response:
    """The service's answer for the caller: status, body and the headers clients need."""
    response: Response
    length = upstream.content_length
    if (
        request.method == "HEAD"
        or upstream.status in (204, 304)
        or (length is not None and length <= BUFFER_LIMIT)
    ):
        try:
            content = await upstream.read()
        except TimeoutError as exc:
            raise GatewayTimeout(f"The {service} service did not answer in time.") from exc
        except aiohttp.ClientError as exc:
            raise BadGateway(f"The {service} service broke off its answer.") from exc
        finally:
            upstream.release()
        response = Response(content, status_code=upstream.status)
    else:
        response = StreamingResponse(_relay(upstream, service), status_code=upstream.status)
    for name, value in upstream.headers.items():
        if _kept(name):
            response.headers.append(name, value)
    return response


@router.api_route("/{resource}", methods=METHODS)
@router.api_route("/{resource}/{rest:path}", methods=METHODS)
async def forward(
    request: Request, resource: str, _caller: CurrentUser, gateway: GatewayDep
) -> Response:
    """Send the request on to the owning service and its answer back, bodies untouched."""
    service = ROUTES.get(resource)
    if service is None:
        raise NotFound(f"There is no route {request.method} {request.url.path}.")
    headers = request_headers(request)
    body = await _body(request, headers)
    # aiohttp itself sends an idempotent request once more when a kept-alive
    # connection turns out dead (a restarted service); writes are never resent.
    try:
        upstream = await gateway.upstreams.session.request(
            request.method,
            _target(request, gateway.upstreams.url(service)),
            headers=headers,
            data=body,
            allow_redirects=False,
        )
    except TimeoutError as exc:
        raise GatewayTimeout(f"The {service} service did not answer in time.") from exc
    except aiohttp.ClientError as exc:
        log.warning("%s unreachable: %s", service, exc)
        raise BadGateway(f"The {service} service is unavailable.") from exc
    return await _response(request, upstream, service)
