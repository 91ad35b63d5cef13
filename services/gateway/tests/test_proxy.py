"""Routing to the services, the merged OpenAPI document and readiness, against real upstreams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import orjson

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BIG_EXPORT_ROWS,
    SERVICES,
    Api,
    Echo,
    echo_app,
    running_gateway,
)
from crm_kernel.testing import free_port, serve_in_process

MakeSettings = Callable[..., GatewaySettings]
PROBLEM = "application/problem+json"


def all_services_at(url: str) -> dict[str, str]:
    return {f"{service.upper()}_URL": url for service in SERVICES}


async def test_request_is_forwarded_with_method_path_query_body_and_headers(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        token = (await api.login(ADMIN_EMAIL, ADMIN_PASSWORD))["access_token"]
        body = orjson.dumps({"first_name": "Ада", "tags": ["vip"]})
        response = await api.http.post(
            "/api/v1/contacts/merge?dry_run=true&tag=a%2Cb&tag=c",
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": "key-1",
                "If-Match": '"3"',
                "X-Request-ID": "req-123",
                "Cookie": "session=secret",
                "X-Custom": "dropped",
            },
        )
    assert len(echo.received) == 1
    seen = echo.received[0]
    assert seen["method"] == "POST"
    assert seen["path"] == "/api/v1/contacts/merge"
    assert seen["query"] == "dry_run=true&tag=a%2Cb&tag=c"
    assert seen["body"].encode() == body
    headers = seen["headers"]
    assert headers["authorization"] == f"Bearer {token}"
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "key-1"
    assert headers["if-match"] == '"3"'
    assert headers["x-request-id"] == "req-123"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["traceparent"].startswith("00-")
    assert "cookie" not in headers
    assert "x-custom" not in headers
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"


async def test_upstream_status_body_and_chosen_headers_come_back(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(DEALS_URL=echo.url)) as api:
        headers = await api.admin_headers()
        response = await api.http.delete("/api/v1/deals/d1?status=409", headers=headers)
        assert response.status_code == 409
        assert response.json()["path"] == "/api/v1/deals/d1"
        assert response.headers["etag"] == '"7"'
        # The service's own RateLimit-* are replaced by the gateway's budget.
        assert response.headers.get_list("ratelimit-limit") == ["300"]
        assert response.headers["content-type"] == "application/json"
        assert "x-internal-secret" not in response.headers
        assert response.headers["x-request-id"]


async def test_each_resource_goes_to_its_service(make_settings: MakeSettings, echo: Echo) -> None:
    async with running_gateway(make_settings(NOTIFICATIONS_URL=echo.url)) as api:
        headers = await api.admin_headers()
        assert (await api.http.get("/api/v1/me/notifications", headers=headers)).status_code == 200
        assert (await api.http.get("/api/v1/webhooks", headers=headers)).status_code == 200
        # Contacts is not the echo: nothing listens there.
        assert (await api.http.get("/api/v1/contacts", headers=headers)).status_code == 502
    assert [r["path"] for r in echo.received] == ["/api/v1/me/notifications", "/api/v1/webhooks"]


async def test_no_token_is_refused_before_forwarding(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        response = await api.http.get("/api/v1/contacts")
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        forged = await api.http.get("/api/v1/contacts", headers=api.bearer("not.a.jwt"))
        assert forged.status_code == 401
    assert echo.received == []


async def test_a_logged_out_token_is_refused_before_forwarding(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        token = (await api.login(ADMIN_EMAIL, ADMIN_PASSWORD))["access_token"]
        assert (
            await api.http.get("/api/v1/contacts", headers=api.bearer(token))
        ).status_code == 200
        await api.http.post("/api/v1/auth/logout", headers=api.bearer(token))
        response = await api.http.get("/api/v1/contacts", headers=api.bearer(token))
        assert response.status_code == 401
    assert len(echo.received) == 1


async def test_unknown_resource_is_a_404_problem(api: Api) -> None:
    response = await api.http.get("/api/v1/spaceships/1", headers=await api.admin_headers())
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/not-found"


async def test_upstream_down_is_a_502_problem(api: Api) -> None:
    response = await api.http.get("/api/v1/deals", headers=await api.admin_headers())
    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "/problems/upstream-unavailable"
    assert "deals" in body["detail"]


async def test_upstream_timeout_is_a_504_problem(
    make_settings: MakeSettings, silent_upstream: str
) -> None:
    settings = make_settings(REPORTS_URL=silent_upstream, UPSTREAM_TIMEOUT=0.3)
    async with running_gateway(settings) as api:
        response = await api.http.get("/api/v1/reports/funnel", headers=await api.admin_headers())
    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/upstream-timeout"


async def test_large_bodies_stream_through_intact(make_settings: MakeSettings, echo: Echo) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        headers = await api.admin_headers()
        export = await api.http.get("/api/v1/exports/big", headers=headers)
        assert export.status_code == 200
        assert export.headers["content-type"].startswith("text/csv")
        lines = export.text.splitlines()
        assert len(lines) == BIG_EXPORT_ROWS
        assert lines[-1].startswith(f"{BIG_EXPORT_ROWS - 1:08d},")

        upload = b"x" * (3 << 20)  # over the buffering limit: streamed upstream
        response = await api.http.post(
            "/api/v1/imports", content=upload, headers={**headers, "Content-Type": "text/csv"}
        )
        assert response.status_code == 200
        assert len(response.json()["body"]) == len(upload)


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@contextlib.asynccontextmanager
async def service_dying_between_requests(seen: list[str]) -> AsyncIterator[str]:
    """A server that answers the first request of each connection and drops the second.

    To the gateway's connection pool this looks like a service that was killed
    (or restarted) while its kept-alive connection sat idle.
    """
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            for answered in (True, False):
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head.split(b" ", 1)[0].decode())
                if answered:
                    writer.write(OK)
                    await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def test_only_reads_are_sent_again_when_a_kept_alive_connection_drops(
    make_settings: MakeSettings,
) -> None:
    seen: list[str] = []
    async with service_dying_between_requests(seen) as url:
        async with running_gateway(make_settings(CONTACTS_URL=url)) as api:
            headers = await api.admin_headers()
            first = await api.http.get("/api/v1/contacts", headers=headers)
            second = await api.http.get("/api/v1/contacts", headers=headers)
            # A write is never sent twice: the service may have applied it.
            write = await api.http.post("/api/v1/contacts", json={}, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert write.status_code == 502
    assert write.headers["content-type"] == PROBLEM
    assert seen == ["GET", "GET", "GET", "POST"]


async def test_merged_openapi_has_gateway_and_service_paths(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        response = await api.http.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["info"]["title"] == "CRM API"
    paths = doc["paths"]
    for own in ("/api/v1/auth/login", "/api/v1/users", "/api/v1/users/{user_id}", "/api/v1/teams"):
        assert own in paths
    assert "/api/v1/contacts/{contact_id}" in paths
    # Paths the gateway does not route to that service are left out.
    assert "/api/v1/internal/ping" not in paths
    assert "ContactRead" in doc["components"]["schemas"]
    assert "UserRead" in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert paths["/api/v1/auth/login"]["post"]["security"] == []
    # The gateway's own behaviour is declared on every operation.
    assert "429" in paths["/api/v1/contacts/{contact_id}"]["get"]["responses"]
    user_create = paths["/api/v1/users"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in user_create["parameters"]]
    assert "parameters" not in paths["/api/v1/auth/me"]["get"]
    assert "parameters" not in paths["/api/v1/auth/login"]["post"]
    assert set(doc["x-unavailable-services"]) == set(SERVICES) - {"contacts"}


async def test_openapi_retries_a_service_that_was_down(make_settings: MakeSettings) -> None:
    port = free_port()
    async with running_gateway(make_settings(CONTACTS_URL=f"http://127.0.0.1:{port}")) as api:
        before = (await api.http.get("/api/v1/openapi.json")).json()
        assert "/api/v1/contacts/{contact_id}" not in before["paths"]
        async with serve_in_process(echo_app([]), port=port):
            after = (await api.http.get("/api/v1/openapi.json")).json()
        assert "/api/v1/contacts/{contact_id}" in after["paths"]
        assert "contacts" not in after["x-unavailable-services"]


async def test_ready_only_when_every_service_is_healthy(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(**all_services_at(echo.url))) as api:
        response = await api.http.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"] == {"database": True, "bus": True}
        assert body["services"] == dict.fromkeys(SERVICES, "ok")

    settings = make_settings(**{**all_services_at(echo.url), "REPORTS_URL": "http://127.0.0.1:9"})
    async with running_gateway(settings) as api:
        response = await api.http.get("/readyz")
        assert response.status_code == 503
        services = response.json()["services"]
        assert services["reports"].startswith("unreachable")
        assert services["contacts"] == "ok"
        assert (await api.http.get("/healthz")).status_code == 200
