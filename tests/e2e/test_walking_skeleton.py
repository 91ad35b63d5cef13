"""The thinnest slice through every layer: gateway -> contacts -> outbox -> NATS -> reports -> gateway."""

from __future__ import annotations

import uuid

import httpx

from e2e_helpers import login, wait_for
from stack import Stack


def test_contact_created_through_gateway_is_counted_by_reports(
    shared_gateway: httpx.Client,
) -> None:
    headers = login(shared_gateway)
    before = shared_gateway.get("/reports/overview", headers=headers).json()["contacts"]
    created = shared_gateway.post(
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
    fetched = shared_gateway.get(f"/contacts/{contact['id']}", headers=headers)
    assert fetched.status_code == 200 and fetched.json()["email"] == "ivan@example.com"
    listed = shared_gateway.get("/contacts", headers=headers).json()
    assert contact["id"] in [item["id"] for item in listed["items"]]
    wait_for(
        lambda: (
            shared_gateway.get("/reports/overview", headers=headers).json()["contacts"]
            == before + 1
        ),
        message="reports to count the new contact",
    )


def test_gateway_answers_problem_json_for_what_a_user_can_get_wrong(
    shared_gateway: httpx.Client,
) -> None:
    assert shared_gateway.get("/contacts").status_code == 401
    headers = login(shared_gateway)
    bad = shared_gateway.post(
        "/contacts", json={"first_name": "A", "email": "nope"}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in bad.json()["errors"]] == ["email"]
    missing = shared_gateway.get(f"/contacts/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    unknown = shared_gateway.get("/no-such-resource", headers=headers)
    assert unknown.status_code == 404


def test_wrong_password_is_401_then_429_for_that_account_only(shared_gateway: httpx.Client) -> None:
    admin = login(shared_gateway)
    email = f"rep-{uuid.uuid4().hex[:8]}@example.com"
    created = shared_gateway.post(
        "/users",
        json={
            "email": email,
            "full_name": "Rep",
            "role": "sales_rep",
            "password": "rep-password-1",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    wrong = {"email": email, "password": "wrong-password"}
    statuses = [shared_gateway.post("/auth/login", json=wrong).status_code for _ in range(8)]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    throttled = shared_gateway.post("/auth/login", json=wrong)
    assert int(throttled.headers["retry-after"]) > 0
    # Never an account-wide lock-out of others: the admin still logs in.
    assert login(shared_gateway)


def test_every_service_is_ready_and_openapi_is_merged(
    shared_gateway: httpx.Client, shared_stack: Stack
) -> None:
    ready = httpx.get(f"{shared_stack.config.gateway_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    spec = shared_gateway.get("/openapi.json").json()
    assert "/api/v1/contacts" in spec["paths"]
    assert "/api/v1/reports/overview" in spec["paths"]
    assert "/api/v1/auth/login" in spec["paths"]


def test_deal_won_through_the_gateway_reaches_the_overview(shared_gateway: httpx.Client) -> None:
    headers = login(shared_gateway)
    before = shared_gateway.get("/reports/overview", headers=headers).json()["deals_won"]
    created = shared_gateway.post(
        "/deals",
        json={"title": "Поставка", "amount": "150000.50", "currency": "RUB"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    deal = created.json()
    won = shared_gateway.post(f"/deals/{deal['id']}/win", headers=headers)
    assert won.status_code == 200, won.text
    history = shared_gateway.get(f"/deals/{deal['id']}/history", headers=headers).json()
    assert len(history) == 2  # created in the first stage, then won
    overview = wait_for(
        lambda: (
            (body := shared_gateway.get("/reports/overview", headers=headers).json())["deals_won"]
            == before + 1
            and body
        ),
        message="reports to count the won deal",
    )
    assert {"currency": "RUB", "amount": "150000.50", "weighted": None} in overview["won_amount"]
