"""Products, proposals priced exactly in Decimal, and orders through their status machine."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crm_deals.testing import User, create_deal, new_user, wait_for_events
from crm_kernel.auth import Role

# (currency, [(quantity, unit_price, discount_percent, expected line total)], expected total)
PRICING: list[tuple[str, list[tuple[str, str, str, str]], str]] = [
    (
        "RUB",
        [
            ("3", "19.99", "0", "59.97"),
            ("1", "100", "12.5", "87.50"),
            ("7", "0.333", "0", "2.33"),  # 2.331
            ("1", "0.125", "0", "0.13"),  # half-up, not to even
            ("2.5", "10.01", "10", "22.52"),  # 22.5225
        ],
        "172.45",
    ),
    (
        "JPY",
        [("3", "333.5", "0", "1001"), ("1", "999", "33.33", "666")],
        "1667",
    ),  # 1000.5; 666.0333
    ("KWD", [("1", "1.0005", "0", "1.001"), ("3", "0.3333", "0", "1.000")], "2.001"),
]


@pytest.mark.parametrize(("currency", "lines", "total"), PRICING)
async def test_proposal_totals_are_exact_decimals_rounded_half_up(
    api: httpx.AsyncClient,
    admin: User,
    currency: str,
    lines: list[tuple[str, str, str, str]],
    total: str,
) -> None:
    deal = await create_deal(api, admin, currency=currency)
    response = await api.post(
        "/proposals",
        json={
            "deal_id": deal["id"],
            "items": [
                {"name": f"Line {i}", "quantity": q, "unit_price": p, "discount_percent": d}
                for i, (q, p, d, _) in enumerate(lines)
            ],
        },
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    proposal = response.json()
    assert proposal["currency"] == currency and proposal["status"] == "draft"
    assert [i["line_total"] for i in proposal["items"]] == [line[3] for line in lines]
    assert proposal["total"] == total
    fetched = await api.get(f"/proposals/{proposal['id']}", headers=admin.headers)
    assert fetched.json() == proposal


async def test_catalogue_prices_fill_lines_and_mixed_currencies_are_refused(
    api: httpx.AsyncClient, admin: User
) -> None:
    rub = await api.post(
        "/products",
        json={"name": "Licence", "sku": "LIC-1", "unit_price": "1500", "currency": "RUB"},
        headers=admin.headers,
    )
    assert rub.status_code == 201, rub.text
    eur = await api.post(
        "/products",
        json={"name": "Support", "sku": "SUP-1", "unit_price": "99.90", "currency": "EUR"},
        headers=admin.headers,
    )
    duplicate = await api.post(
        "/products",
        json={"name": "Again", "sku": "LIC-1", "unit_price": "1", "currency": "RUB"},
        headers=admin.headers,
    )
    assert duplicate.status_code == 409 and duplicate.json()["errors"][0]["field"] == "sku"
    deal = await create_deal(api, admin, currency="RUB")
    made = await api.post(
        "/proposals",
        json={
            "deal_id": deal["id"],
            "items": [{"product_id": rub.json()["id"], "quantity": 2, "discount_percent": 5}],
        },
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["items"][0]["name"] == "Licence"
    assert made.json()["items"][0]["unit_price"] == "1500"
    assert made.json()["total"] == "2850.00"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"product_id": eur.json()["id"], "quantity": 1}, "items.1.product_id"),
        ({"name": "Setup", "quantity": 1, "unit_price": 10, "currency": "USD"}, "items.1.currency"),
        ({"name": "Setup", "quantity": 1}, "items.1.unit_price"),
        ({"name": "Setup", "quantity": 0, "unit_price": 1}, "items.1.quantity"),
        (
            {"name": "Setup", "quantity": 1, "unit_price": 1, "discount_percent": 101},
            "items.1.discount_percent",
        ),
    ]
    for bad_item, field in cases:
        refused = await api.post(
            "/proposals",
            json={
                "deal_id": deal["id"],
                "items": [{"product_id": rub.json()["id"], "quantity": 1}, bad_item],
            },
            headers=admin.headers,
        )
        assert refused.status_code == 422, (bad_item, refused.text)
        assert field in [e["field"] for e in refused.json()["errors"]], refused.json()
    listed = await api.get("/proposals", params={"deal_id": deal["id"]}, headers=admin.headers)
    assert len(listed.json()["items"]) == 1


async def test_accepted_proposal_becomes_an_order_that_follows_its_status_machine(
    api: httpx.AsyncClient, admin: User, nats_url: str
) -> None:
    deal = await create_deal(api, admin, currency="EUR")
    proposal = (
        await api.post(
            "/proposals",
            json={
                "deal_id": deal["id"],
                "items": [{"name": "X", "quantity": 1, "unit_price": "10"}],
            },
            headers=admin.headers,
        )
    ).json()
    url = f"/proposals/{proposal['id']}"
    assert (await api.post(f"{url}/accept", headers=admin.headers)).status_code == 409  # a draft
    assert (await api.post(f"{url}/send", headers=admin.headers)).json()["status"] == "sent"
    assert (await api.post(f"{url}/accept", headers=admin.headers)).json()["status"] == "accepted"
    assert (await api.post(f"{url}/accept", headers=admin.headers)).status_code == 409
    orders = (
        await api.get("/orders", params={"deal_id": deal["id"]}, headers=admin.headers)
    ).json()
    assert len(orders["items"]) == 1
    order = orders["items"][0]
    assert (order["status"], order["total"], order["currency"]) == ("created", "10.00", "EUR")
    assert order["proposal_id"] == proposal["id"]
    order_url = f"/orders/{order['id']}/status"

    async def to(status: str, **headers: str) -> httpx.Response:
        return await api.post(
            order_url, json={"status": status}, headers={**admin.headers, **headers}
        )

    assert (await to("paid")).status_code == 409  # skipping invoiced
    for status in ("invoiced", "paid", "shipped", "delivered"):
        moved = await to(status)
        assert moved.status_code == 200 and moved.json()["status"] == status
    illegal = await to("paid")
    assert illegal.status_code == 409
    assert illegal.headers["content-type"].startswith("application/problem+json")
    assert illegal.json()["current_status"] == "delivered"
    assert (await to("cancelled")).status_code == 409  # delivered is final
    assert (await to("cancelled", **{"If-Match": '"1"'})).status_code == 412
    events = await wait_for_events(
        nats_url,
        lambda evs: sum(e["type"] == "crm.deals.order.status_changed" for e in evs) == 4,
        "four order status changes",
    )
    changes = [e["data"] for e in events if e["type"] == "crm.deals.order.status_changed"]
    assert [(c["previous_status"], c["status"]) for c in changes] == [
        ("created", "invoiced"),
        ("invoiced", "paid"),
        ("paid", "shipped"),
        ("shipped", "delivered"),
    ]
    assert all(c["owner_id"] == admin.id and c["total"] == "10.00" for c in changes)
    assert sum(e["type"] == "crm.deals.order.created" for e in events) == 1


async def test_colleagues_proposals_and_orders_are_invisible(
    api: httpx.AsyncClient, admin: User
) -> None:
    rep_a, rep_b = new_user(Role.SALES_REP), new_user(Role.SALES_REP)
    deal = await create_deal(api, rep_a)
    body = {"deal_id": deal["id"], "items": [{"name": "X", "quantity": 1, "unit_price": 1}]}
    proposal = (await api.post("/proposals", json=body, headers=rep_a.headers)).json()
    foreign = await api.post("/proposals", json=body, headers=rep_b.headers)
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "deal_id"
    assert (await api.get(f"/proposals/{proposal['id']}", headers=rep_b.headers)).status_code == 404
    assert (
        await api.post(f"/proposals/{proposal['id']}/send", headers=rep_b.headers)
    ).status_code == 404
    assert (await api.get("/proposals", headers=rep_b.headers)).json()["items"] == []
    await api.post(f"/proposals/{proposal['id']}/send", headers=rep_a.headers)
    await api.post(f"/proposals/{proposal['id']}/accept", headers=rep_a.headers)
    order = (await api.get("/orders", headers=rep_a.headers)).json()["items"][0]
    assert (await api.get(f"/orders/{order['id']}", headers=rep_b.headers)).status_code == 404
    assert (await api.get("/orders", headers=rep_b.headers)).json()["items"] == []
    cancel = await api.post(
        f"/orders/{order['id']}/status", json={"status": "cancelled"}, headers=rep_b.headers
    )
    assert cancel.status_code == 404
    marketer = new_user(Role.MARKETER)
    assert (await api.get(f"/orders/{order['id']}", headers=marketer.headers)).status_code == 200
    assert (
        await api.post(
            f"/orders/{order['id']}/status", json={"status": "cancelled"}, headers=marketer.headers
        )
    ).status_code == 403
    product = await api.post(
        "/products",
        json={"name": "P", "sku": "P-1", "unit_price": "1", "currency": "RUB"},
        headers=rep_a.headers,
    )
    assert product.status_code == 403


async def test_only_a_draft_can_have_its_lines_replaced(
    api: httpx.AsyncClient, admin: User, nats_url: str
) -> None:
    deal = await create_deal(api, admin, currency="RUB")
    proposal = (
        await api.post(
            "/proposals",
            json={"deal_id": deal["id"], "items": [{"name": "A", "quantity": 1, "unit_price": 5}]},
            headers=admin.headers,
        )
    ).json()
    url = f"/proposals/{proposal['id']}"
    new_lines = {
        "currency": "EUR",
        "items": [
            {"name": "B", "quantity": "2", "unit_price": "10.005", "discount_percent": 0},
            {"name": "C", "quantity": "1", "unit_price": "1"},
        ],
    }
    replaced = await api.put(
        f"{url}/items", json=new_lines, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["currency"], body["total"], body["version"]) == ("EUR", "21.01", 2)
    assert [i["line_total"] for i in body["items"]] == ["20.01", "1.00"]
    assert (await api.get(url, headers=admin.headers)).json() == body
    stale = await api.put(
        f"{url}/items", json=new_lines, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    await api.post(f"{url}/send", headers=admin.headers)
    frozen = await api.put(f"{url}/items", json=new_lines, headers=admin.headers)
    assert frozen.status_code == 409
    events = await wait_for_events(
        nats_url,
        lambda evs: (
            any(e["type"] == "crm.deals.proposal.updated" for e in evs)
            and any(e["type"] == "crm.deals.proposal.status_changed" for e in evs)
        ),
        "proposal updated and sent",
    )
    updated = [e for e in events if e["type"] == "crm.deals.proposal.updated"]
    assert len(updated) == 1 and updated[0]["data"]["total"] == "21.01"
