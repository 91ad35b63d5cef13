"""The thinnest slice through every layer: gateway -> contacts -> outbox -> NATS -> reports -> gateway."""

from __future__ import annotations

import uuid

import httpx

from e2e_helpers import ADMIN_EMAIL, login, wait_for


def test_contact_created_through_gateway_is_counted_by_reports(gateway: httpx.Client) -> None:
    headers = login(gateway)
    before = gateway.get("/reports/overview", headers=headers).json()["contacts"]
    created = gateway.post(
        "/contacts",
        json={
            "first_name": "Иван",
            "last_name": "Сидоров",
            "phone": "+7 912 3456789",
            "email": "ivan@example.com",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    contact = created.json()
    assert contact["phone"] == "+79123456789"
    fetched = gateway.get(f"/contacts/{contact['id']}", headers=headers)
    assert fetched.status_code == 200 and fetched.json()["email"] == "ivan@example.com"
    listed = gateway.get("/contacts", headers=headers).json()
    assert contact["id"] in [item["id"] for item in listed["items"]]
    wait_for(
        lambda: gateway.get("/reports/overview", headers=headers).json()["contacts"] == before + 1,
        message="reports to count the new contact",
    )


def test_gateway_answers_problem_json_for_what_a_user_can_get_wrong(gateway: httpx.Client) -> None:
    assert gateway.get("/contacts").status_code == 401
    headers = login(gateway)
    bad = gateway.post("/contacts", json={"first_name": "A", "email": "nope"}, headers=headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in bad.json()["errors"]] == ["email"]
    missing = gateway.get(f"/contacts/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    unknown = gateway.get("/no-such-resource", headers=headers)
    assert unknown.status_code == 404


def test_wrong_password_is_401_then_429(gateway: httpx.Client) -> None:
    statuses = [
        gateway.post(
            "/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong-password"}
        ).status_code
        for _ in range(8)
    ]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    throttled = gateway.post(
        "/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong-password"}
    )
    assert int(throttled.headers["retry-after"]) > 0


def test_every_service_is_ready_and_openapi_is_merged(gateway: httpx.Client, stack) -> None:  # type: ignore[no-untyped-def]
    ready = httpx.get(f"{stack.config.gateway_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    spec = gateway.get("/openapi.json").json()
    assert "/api/v1/contacts" in spec["paths"]
    assert "/api/v1/reports/overview" in spec["paths"]
    assert "/api/v1/auth/login" in spec["paths"]
