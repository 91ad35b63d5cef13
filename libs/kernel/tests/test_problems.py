"""Problem responses (RFC 9457) for every kind of error, carrying the request id."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, insert, select

from crm_kernel.db import Database
from crm_kernel.problems import (
    BadGateway,
    Conflict,
    DomainError,
    Forbidden,
    GatewayTimeout,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
    install_problem_handlers,
)
from crm_kernel.request_id import RequestIdMiddleware

PROBLEM = "application/problem+json"
ERRORS: dict[str, type[DomainError]] = {
    "forbidden": Forbidden,
    "conflict": Conflict,
    "stale": PreconditionFailed,
    "unprocessable": Unprocessable,
    "bad-gateway": BadGateway,
    "unavailable": ServiceUnavailable,
    "gateway-timeout": GatewayTimeout,
}


class Consent(BaseModel):
    email: bool


class ContactCreate(BaseModel):
    first_name: str
    consent: Consent


def toy_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.post("/contacts")
    async def create(contact: ContactCreate) -> dict[str, str]:
        return {"first_name": contact.first_name}

    @app.get("/contacts")
    async def search(limit: int = 50) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/contacts/{contact_id}")
    async def read(contact_id: str) -> None:
        raise NotFound(f"No contact {contact_id}.")

    @app.get("/busy")
    async def busy() -> None:
        raise TooManyRequests("Slow down.", retry_after=7)

    @app.get("/raise/{name}")
    async def raise_named(name: str) -> None:
        raise ERRORS[name]("It went wrong.")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("connection to postgres://admin:hunter2@db failed")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # The 500 handler answers, then Starlette re-raises for the server to log; let it.
    transport = httpx.ASGITransport(app=toy_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_invalid_nested_body_field_is_422_problem_naming_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/contacts", json={"first_name": "A", "consent": {"email": "?"}})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "/problems/validation"
    assert problem["status"] == 422
    assert [(e["field"], e["location"]) for e in problem["errors"]] == [("consent.email", "body")]
    assert "consent.email" in problem["detail"]


async def test_every_invalid_field_is_listed(client: httpx.AsyncClient) -> None:
    response = await client.post("/contacts", json={"consent": {}})
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"first_name", "consent.email"}


async def test_malformed_json_body_is_422_problem_naming_the_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/contacts",
        content=b'{"first_name": "A",,}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


async def test_invalid_query_parameter_is_422_problem_naming_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/contacts", params={"limit": "many"})
    assert response.status_code == 422
    assert [(e["field"], e["location"]) for e in response.json()["errors"]] == [("limit", "query")]


async def test_not_found_is_404_problem_with_its_detail(client: httpx.AsyncClient) -> None:
    response = await client.get("/contacts/42")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["type"], problem["title"], problem["detail"]) == (
        "/problems/not-found",
        "Not found",
        "No contact 42.",
    )


@pytest.mark.parametrize(
    ("name", "status", "type_"),
    [
        ("forbidden", 403, "/problems/forbidden"),
        ("conflict", 409, "/problems/conflict"),
        ("stale", 412, "/problems/stale-version"),
        ("unprocessable", 422, "/problems/validation"),
        ("bad-gateway", 502, "/problems/upstream-unavailable"),
        ("unavailable", 503, "/problems/unavailable"),
        ("gateway-timeout", 504, "/problems/upstream-timeout"),
    ],
)
async def test_each_domain_error_is_a_problem_with_its_status_and_type(
    client: httpx.AsyncClient, name: str, status: int, type_: str
) -> None:
    response = await client.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["status"], problem["type"], problem["detail"]) == (
        status,
        type_,
        "It went wrong.",
    )


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_too_many_requests_is_429_problem_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/busy")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["type"] == "/problems/rate-limited"


async def test_unexpected_error_is_500_problem_that_does_not_leak_the_message(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Internal error"
    assert "hunter2" not in response.text and "postgres" not in response.text


async def test_request_id_is_echoed_in_header_and_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/contacts/42", headers={"X-Request-ID": "req-123.abc"})
    assert response.headers["x-request-id"] == "req-123.abc"
    assert response.json()["request_id"] == "req-123.abc"


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 129, "new\\nline"], ids=str)
async def test_request_id_is_generated_when_absent_or_unsafe(
    client: httpx.AsyncClient, incoming: str | None
) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    response = await client.get("/contacts/42", headers=headers)
    generated = response.headers["x-request-id"]
    assert generated != incoming and len(generated) == 32
    assert response.json()["request_id"] == generated
    other = await client.get("/contacts/42", headers=headers)
    assert other.headers["x-request-id"] != generated


async def test_successful_response_carries_the_request_id_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/contacts", headers={"X-Request-ID": "ok-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "ok-1"


async def test_500_problem_carries_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers.get("x-request-id") == "req-500"
    assert response.json().get("request_id") == "req-500"


notes = MetaData()
note_rows = Table(
    "problem_notes",
    notes,
    Column("id", Integer, primary_key=True),
    Column("text", String(100)),
    Column("extra", JSON),
)


@pytest.mark.parametrize(
    "body", [{"text": "a\u0000b"}, {"text": "ok", "extra": {"k": "a\u0000b"}}], ids=["text", "json"]
)
async def test_a_nul_character_is_a_422_problem_or_stored_never_a_500(
    open_db: Callable[..., Awaitable[Database]], body: dict[str, Any]
) -> None:
    db = await open_db(notes)
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/notes")
    async def create(note: dict[str, Any]) -> dict[str, str]:
        async with db.transaction() as session:
            await session.execute(insert(note_rows).values(**note))
        return {"stored": "yes"}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/notes", json=body)
    async with db.session() as session:
        stored = (await session.execute(select(note_rows.c.text, note_rows.c.extra))).all()
    if response.status_code == 200:  # SQLite, and PostgreSQL's json type, store it as typed
        assert stored == [(body["text"], body.get("extra"))]
        assert db.is_sqlite or "extra" in body
        return
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert "NUL" in response.json()["detail"]
    assert stored == []
