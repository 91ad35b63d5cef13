"""The signed order-status link: on order events, served publicly, 404 when tampered or expired."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from crm_deals.testing import User, create_deal, settings_for, wait_for_events
from crm_kernel.signing import Signer


async def _order(api: httpx.AsyncClient, admin: User) -> dict[str, Any]:
    deal = await create_deal(api, admin, currency="EUR", title="Secret deal title")
    body = {"deal_id": deal["id"], "items": [{"name": "X", "quantity": 3, "unit_price": "10.5"}]}
    proposal = (await api.post("/proposals", json=body, headers=admin.headers)).json()
    for step in ("send", "accept"):
        response = await api.post(f"/proposals/{proposal['id']}/{step}", headers=admin.headers)
        assert response.status_code == 200, response.text
    orders = await api.get("/orders", params={"deal_id": deal["id"]}, headers=admin.headers)
    [order] = orders.json()["items"]
    return dict(order)


def _public(api: httpx.AsyncClient, token: str) -> httpx.URL:
    return api.base_url.copy_with(path=f"/public/orders/{token}")


async def test_order_events_carry_a_link_that_shows_the_status_without_login(
    api: httpx.AsyncClient, admin: User, db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    public_url = settings_for(db_url, nats_url, tmp_dir).public_url
    order = await _order(api, admin)
    response = await api.post(
        f"/orders/{order['id']}/status", json={"status": "invoiced"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    events = await wait_for_events(
        nats_url,
        lambda es: any(e["type"] == "crm.deals.order.status_changed" for e in es),
        "order.status_changed",
    )
    urls = [
        e["data"]["status_url"]
        for e in events
        if e["type"] in ("crm.deals.order.created", "crm.deals.order.status_changed")
    ]
    assert len(urls) == 2
    assert all(u.startswith(f"{public_url}/public/orders/") for u in urls)
    token = urls[-1].rsplit("/", 1)[1]
    payload = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert abs(payload["exp"] - (time.time() + 90 * 86_400)) < 120  # 90 days by default

    page = await api.get(_public(api, token))  # no Authorization header
    assert page.status_code == 200, page.text
    shown = page.json()
    assert set(shown) == {"number", "status", "status_history", "total", "currency", "updated_at"}
    assert (shown["status"], shown["total"], shown["currency"]) == ("invoiced", "31.50", "EUR")
    assert [h["status"] for h in shown["status_history"]] == ["created", "invoiced"]
    assert shown["number"] and shown["number"] in order["id"].replace("-", "").upper()
    # The first link (minted at creation) shows the current status too.
    first = await api.get(_public(api, urls[0].rsplit("/", 1)[1]))
    assert first.json()["status"] == "invoiced"


async def test_a_tampered_expired_or_foreign_token_is_404(
    api: httpx.AsyncClient, admin: User, db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    order = await _order(api, admin)
    settings = settings_for(db_url, nats_url, tmp_dir)
    signer = Signer.from_settings(settings, "deals.order")
    good = signer.sign({"order_id": order["id"]}, max_age_seconds=60)
    assert (await api.get(_public(api, good))).status_code == 200
    payload, signature = good.split(".")
    forged_payload = base64.urlsafe_b64encode(orjson.dumps({"order_id": "x"})).decode().rstrip("=")
    expired = signer.sign({"order_id": order["id"]}, max_age_seconds=-1)
    other_purpose = Signer.from_settings(settings, "campaigns.click").sign(
        {"order_id": order["id"]}
    )
    unknown = signer.sign({"order_id": "01a00000-0000-7000-8000-000000000000"})
    for token in (
        f"{forged_payload}.{signature}",
        f"{payload}.{signature[:-2]}AA",
        expired,
        other_purpose,
        unknown,
        "garbage",
    ):
        response = await api.get(_public(api, token))
        assert response.status_code == 404, token
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "expired" not in response.text and "signature" not in response.text
