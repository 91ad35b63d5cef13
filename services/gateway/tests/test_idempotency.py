"""Idempotency keys over HTTP, against a stand-in service that counts what it creates."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import Api, running_gateway
from crm_kernel.testing import serve_in_process, wait_until

MakeSettings = Callable[..., GatewaySettings]
PROBLEM = "application/problem+json"
REDIS_URL = os.environ.get("TEST_REDIS_URL")


@dataclass
class Contacts:
    """A stand-in contacts service: what it created, a gate holding creations, failures to give."""

    url: str = ""
    created: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0


def contacts_app(contacts: Contacts) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/contacts")
    async def create(request: Request) -> JSONResponse:
        contacts.arrived.set()
        await contacts.gate.wait()
        if contacts.failures:
            contacts.failures -= 1
            return JSONResponse({"detail": "try again"}, status_code=503)
        record = {"id": str(uuid.uuid4()), **(await request.json())}
        contacts.created.append(record)
        return JSONResponse(
            record, status_code=201, headers={"Location": f"/api/v1/contacts/{record['id']}"}
        )

    @app.patch("/api/v1/contacts/{contact_id}")
    async def update(contact_id: str, request: Request) -> JSONResponse:
        record = {"id": contact_id, **(await request.json())}
        contacts.created.append(record)
        return JSONResponse(record)

    return app


@pytest.fixture
async def contacts() -> AsyncIterator[Contacts]:
    state = Contacts()
    state.gate.set()
    async with serve_in_process(contacts_app(state)) as url:
        state.url = url
        yield state


@pytest.fixture(
    params=[
        "database",
        pytest.param(
            "redis", marks=pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL not set")
        ),
    ]
)
def store(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings choosing where keys are kept: the gateway's database, or Redis."""
    if request.param == "database":
        return {"REDIS_URL": ""}
    assert REDIS_URL
    return {"REDIS_URL": REDIS_URL, "CRM_REDIS_PREFIX": f"test:{uuid.uuid4().hex}:"}


async def post(api: Api, headers: dict[str, str], key: str | None, body: dict) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return await api.http.post("/api/v1/contacts", json=body, headers={**headers, **extra})


async def test_a_post_retried_after_a_client_timeout_creates_one_record_and_replays_the_answer(
    make_settings: MakeSettings, contacts: Contacts, store: dict[str, str]
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=contacts.url, **store)) as api:
        headers = {**await api.admin_headers(), "Idempotency-Key": "create-ada-1"}
        contacts.gate.clear()  # the service is slow: the client gives up first
        first = asyncio.create_task(
            api.http.post("/api/v1/contacts", json={"first_name": "Ada"}, headers=headers)
        )
        await asyncio.wait_for(contacts.arrived.wait(), timeout=10)
        first.cancel()  # the client times out once the request has reached the service
        with pytest.raises(asyncio.CancelledError):
            await first
        # The first attempt is still running: a retry now is told so.
        during = await api.http.post(
            "/api/v1/contacts", json={"first_name": "Ada"}, headers=headers
        )
        assert during.status_code == 409
        assert during.headers["content-type"] == PROBLEM
        assert during.headers["retry-after"] == "1"
        contacts.gate.set()

        async def retried() -> httpx.Response | None:
            response = await api.http.post(
                "/api/v1/contacts", json={"first_name": "Ada"}, headers=headers
            )
            return response if response.status_code != 409 else None

        replay = await wait_until(retried, timeout=10, message="the first attempt to finish")
        again = await api.http.post("/api/v1/contacts", json={"first_name": "Ada"}, headers=headers)
    assert len(contacts.created) == 1
    record = contacts.created[0]
    for response in (replay, again):
        assert response.status_code == 201
        assert response.json() == record
        assert response.headers["idempotent-replayed"] == "true"
        assert response.headers["location"] == f"/api/v1/contacts/{record['id']}"
        assert response.headers["content-type"] == "application/json"
        assert "ratelimit-remaining" in response.headers


async def test_the_same_key_for_a_different_request_is_a_422_problem(
    make_settings: MakeSettings, contacts: Contacts, store: dict[str, str]
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=contacts.url, **store)) as api:
        headers = await api.admin_headers()
        first = await post(api, headers, "k-1", {"first_name": "Ada"})
        other_body = await post(api, headers, "k-1", {"first_name": "Grace"})
        other_path = await api.http.patch(
            "/api/v1/contacts/c1",
            json={"first_name": "Ada"},
            headers={**headers, "Idempotency-Key": "k-1"},
        )
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    for response in (other_body, other_path):
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/idempotency-key-reused"
    assert len(contacts.created) == 1


async def test_keys_are_kept_per_caller(
    make_settings: MakeSettings, contacts: Contacts, store: dict[str, str]
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=contacts.url, **store)) as api:
        admin = await api.admin_headers()
        rep = await api.user_headers("rep@example.com")
        first = await post(api, admin, "shared-key", {"first_name": "Ada"})
        second = await post(api, rep, "shared-key", {"first_name": "Ada"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert "idempotent-replayed" not in second.headers
    assert first.json()["id"] != second.json()["id"]
    assert len(contacts.created) == 2


async def test_a_server_error_is_not_stored_so_a_retry_runs_again(
    make_settings: MakeSettings, contacts: Contacts, store: dict[str, str]
) -> None:
    contacts.failures = 1
    async with running_gateway(make_settings(CONTACTS_URL=contacts.url, **store)) as api:
        headers = await api.admin_headers()
        failed = await post(api, headers, "k-2", {"first_name": "Ada"})
        retried = await post(api, headers, "k-2", {"first_name": "Ada"})
    assert failed.status_code == 503
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert len(contacts.created) == 1


async def test_a_stored_answer_is_replayed_by_another_replica(
    make_settings: MakeSettings, contacts: Contacts, store: dict[str, str]
) -> None:
    settings = make_settings(CONTACTS_URL=contacts.url, **store)
    async with running_gateway(settings) as first, running_gateway(settings) as second:
        headers = await first.admin_headers()
        created = await post(first, headers, "k-3", {"first_name": "Ada"})
        replayed = await post(second, headers, "k-3", {"first_name": "Ada"})
    assert created.status_code == replayed.status_code == 201
    assert replayed.json() == created.json()
    assert replayed.headers["idempotent-replayed"] == "true"
    assert len(contacts.created) == 1


async def test_requests_without_a_key_or_with_a_bad_one_are_not_deduplicated(
    make_settings: MakeSettings, contacts: Contacts
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=contacts.url)) as api:
        headers = await api.admin_headers()
        plain = [await post(api, headers, None, {"first_name": "Ada"}) for _ in range(2)]
        bad = await post(api, headers, "a key with spaces", {"first_name": "Ada"})
        anonymous = await post(api, {}, "k-4", {"first_name": "Ada"})
    assert [r.status_code for r in plain] == [201, 201]
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "Idempotency-Key"
    assert anonymous.status_code == 401
    assert len(contacts.created) == 2
