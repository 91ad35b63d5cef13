"""Hostile or odd input gets a 4xx problem naming the field, never a 500 (both backends)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from crm_deals.testing import User, create_deal, default_pipeline


async def test_hostile_input_gets_a_4xx_problem_naming_the_field(
    api: httpx.AsyncClient, admin: User
) -> None:
    pipeline = await default_pipeline(api, admin)
    deal = await create_deal(api, admin)
    three_stages = [
        {"name": "b", "probability": 1, "kind": "won"},
        {"name": "c", "probability": 0, "kind": "lost"},
    ]

    def item(**fields: Any) -> dict[str, Any]:
        return {"deal_id": deal["id"], "items": [{"name": "a", **fields}]}

    calls: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/deals", {"title": "x", "amount": "NaN"}, 422, "amount"),
        ("POST", "/deals", {"title": "x", "amount": "Infinity"}, 422, "amount"),
        ("POST", "/deals", {"title": "x", "amount": "1e20"}, 422, "amount"),
        ("POST", "/deals", {"title": "x", "amount": 1e-30}, 422, "amount"),
        ("POST", "/deals", {"title": "x", "currency": 5}, 422, "currency"),
        (
            "POST",
            "/deals",
            {"title": "x", "expected_close_date": "2026-02-30"},
            422,
            "expected_close_date",
        ),
        (
            "POST",
            "/pipelines",
            {"name": "x", "stages": [{"name": "a", "probability": "NaN"}, *three_stages]},
            422,
            "stages.0.probability",
        ),
        (
            "POST",
            "/pipelines",
            {"name": "x", "stages": [{"name": "a", "probability": "1.234"}, *three_stages]},
            422,
            "stages.0.probability",
        ),
        (
            "PUT",
            f"/pipelines/{pipeline['id']}/stages/order",
            {"stage_ids": [str(uuid.uuid4())]},
            422,
            "stage_ids",
        ),
        ("POST", "/proposals", item(quantity="1.23456", unit_price=1), 422, "items.0.quantity"),
        ("POST", "/proposals", item(quantity="NaN", unit_price=1), 422, "items.0.quantity"),
        (
            "POST",
            "/proposals",
            item(quantity="999999999", unit_price="99999999999999"),
            422,
            "items.0.quantity",
        ),
        ("POST", "/proposals", {"deal_id": deal["id"], "items": []}, 422, "items"),
        (
            "POST",
            "/products",
            {"name": "a", "sku": "s", "unit_price": "1.005", "currency": "RUB"},
            422,
            "unit_price",
        ),
        ("PATCH", f"/deals/{deal['id']}", {"owner_id": None}, 422, "owner_id"),
        ("GET", "/deals?sort=amount", None, 400, "sort"),
        ("GET", f"/pipelines/{pipeline['id']}/board?per_stage=0", None, 422, "per_stage"),
        ("GET", "/deals/not-a-uuid", None, 422, "deal_id"),
        ("POST", f"/deals/{deal['id']}/lose", {"reason": "  "}, 422, "reason"),
    ]
    for method, url, body, status, field in calls:
        response = await api.request(method, url, json=body, headers=admin.headers)
        assert response.status_code == status, (method, url, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], (url, response.json())
    unchanged = (await api.get(f"/deals/{deal['id']}", headers=admin.headers)).json()
    assert unchanged == deal
