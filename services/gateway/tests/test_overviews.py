"""Composed views: parts fetched in parallel from stand-in services, timeouts, circuit breaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from crm_gateway.overviews.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from crm_gateway.overviews.routes import TASKS_ABSENT
from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import running_gateway
from crm_kernel.testing import serve_in_process, wait_until

MakeSettings = Callable[..., GatewaySettings]

CONTACTS: dict[str, Any] = {
    "/api/v1/contacts/c1": {"id": "c1", "first_name": "Ada", "company_id": "co1"},
    "/api/v1/contacts/c2": {"id": "c2", "first_name": "Bob", "company_id": None},
    "/api/v1/companies/co1": {"id": "co1", "name": "Acme"},
    "/api/v1/contacts/c1/timeline": {"items": [{"kind": "activity", "id": "a1"}]},
    "/api/v1/contacts/c2/timeline": {"items": [], "next_cursor": None},
}
DEALS: dict[str, Any] = {
    "/api/v1/deals": {"items": [{"id": "d1", "contact_id": "c1"}], "next_cursor": None},
    "/api/v1/deals/d1": {"id": "d1", "title": "Big one", "contact_id": "c1"},
    "/api/v1/deals/d1/history": [{"id": "h1", "to_stage_id": "s1"}],
    "/api/v1/proposals": {"items": [{"id": "p1", "deal_id": "d1"}], "next_cursor": None},
}


@dataclass
class InFlight:
    now: int = 0
    most: int = 0


@dataclass
class StandIn:
    """A stand-in service answering canned bodies (404 otherwise), and what it was asked."""

    url: str
    seen: list[dict[str, Any]]
    delay: dict[str, float] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)

    def calls_to(self, path: str) -> int:
        return sum(1 for request in self.seen if request["path"] == path)


def stand_in_app(bodies: dict[str, Any], standin: StandIn, in_flight: InFlight) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/{rest:path}")
    async def answer(request: Request, rest: str) -> JSONResponse:
        path = request.url.path
        standin.seen.append(
            {
                "path": path,
                "query": dict(request.query_params),
                "authorization": request.headers.get("authorization"),
            }
        )
        in_flight.now += 1
        in_flight.most = max(in_flight.most, in_flight.now)
        try:
            await asyncio.sleep(standin.delay.get(path, 0))
        finally:
            in_flight.now -= 1
        if path in standin.failing:
            return JSONResponse({"title": "down"}, status_code=503)
        if path not in bodies:
            return JSONResponse({"title": "Not found"}, status_code=404)
        return JSONResponse(bodies[path])

    return app


@dataclass
class Services:
    contacts: StandIn
    deals: StandIn
    in_flight: InFlight


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    in_flight = InFlight()
    contacts = StandIn(url="", seen=[])
    deals = StandIn(url="", seen=[])
    async with (
        serve_in_process(stand_in_app(CONTACTS, contacts, in_flight)) as contacts_url,
        serve_in_process(stand_in_app(DEALS, deals, in_flight)) as deals_url,
    ):
        contacts.url, deals.url = contacts_url, deals_url
        yield Services(contacts=contacts, deals=deals, in_flight=in_flight)


def wired(services: Services) -> dict[str, str]:
    return {"CONTACTS_URL": services.contacts.url, "DEALS_URL": services.deals.url}


async def test_contact_overview_is_assembled_from_parallel_calls_with_the_callers_token(
    make_settings: MakeSettings, services: Services
) -> None:
    for path in ("/api/v1/contacts/c1", "/api/v1/deals", "/api/v1/contacts/c1/timeline"):
        (services.deals if path == "/api/v1/deals" else services.contacts).delay[path] = 0.2
    services.contacts.delay["/api/v1/tasks"] = 0.2
    async with running_gateway(make_settings(**wired(services))) as api:
        headers = await api.admin_headers()
        response = await api.http.get("/api/v1/contacts/c1/overview", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "contact": CONTACTS["/api/v1/contacts/c1"],
        "company": {"id": "co1", "name": "Acme"},
        "open_deals": [{"id": "d1", "contact_id": "c1"}],
        "next_tasks": {"unavailable": True, "reason": TASKS_ABSENT},
        "timeline": [{"kind": "activity", "id": "a1"}],
    }
    # Contact, open deals, tasks and timeline were asked for at the same time.
    assert services.in_flight.most >= 4
    seen = services.contacts.seen + services.deals.seen
    assert {request["authorization"] for request in seen} == {headers["Authorization"]}
    deals_query = services.deals.seen[0]["query"]
    assert deals_query == {"contact_id": "c1", "status": "open", "limit": "10"}
    assert response.headers["ratelimit-limit"] == "1200"


async def test_deal_overview_and_a_contact_without_company(
    make_settings: MakeSettings, services: Services
) -> None:
    async with running_gateway(make_settings(**wired(services))) as api:
        headers = await api.admin_headers()
        deal = await api.http.get("/api/v1/deals/d1/overview", headers=headers)
        contact = await api.http.get("/api/v1/contacts/c2/overview", headers=headers)
    assert deal.status_code == 200, deal.text
    assert deal.json() == {
        "deal": DEALS["/api/v1/deals/d1"],
        "contact": CONTACTS["/api/v1/contacts/c1"],
        "history": [{"id": "h1", "to_stage_id": "s1"}],
        "proposals": [{"id": "p1", "deal_id": "d1"}],
    }
    assert contact.status_code == 200
    assert contact.json()["company"] is None
    assert contact.json()["timeline"] == []


async def test_overview_answers_with_a_service_stopped_marking_the_missing_part(
    make_settings: MakeSettings, services: Services
) -> None:
    # The deals service is not running: its URL is the default, where nothing listens.
    async with running_gateway(make_settings(CONTACTS_URL=services.contacts.url)) as api:
        headers = await api.admin_headers()
        response = await api.http.get("/api/v1/contacts/c1/overview", headers=headers)
        deal = await api.http.get("/api/v1/deals/d1/overview", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["open_deals"] == {
        "unavailable": True,
        "reason": "the deals service is unreachable",
    }
    assert body["contact"]["id"] == "c1"
    assert body["company"]["name"] == "Acme"
    assert body["timeline"] == [{"kind": "activity", "id": "a1"}]
    assert deal.status_code == 200
    assert deal.json()["deal"]["unavailable"] is True
    assert deal.json()["contact"]["unavailable"] is True


async def test_a_slow_service_is_marked_unavailable_within_about_the_timeout(
    make_settings: MakeSettings, services: Services
) -> None:
    services.contacts.delay["/api/v1/contacts/c1/timeline"] = 4.0
    settings = make_settings(**wired(services), CRM_OVERVIEW_TIMEOUT=0.3)
    async with running_gateway(settings) as api:
        headers = await api.admin_headers()
        started = time.monotonic()
        response = await api.http.get("/api/v1/contacts/c1/overview", headers=headers)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["timeline"] == {
        "unavailable": True,
        "reason": "the contacts service did not answer in time",
    }
    assert response.json()["open_deals"] == [{"id": "d1", "contact_id": "c1"}]
    assert elapsed < 3  # did not wait for the slow part (a wide margin for a loaded machine)


async def test_a_contact_or_deal_the_caller_may_not_see_is_a_404_overview(
    make_settings: MakeSettings, services: Services
) -> None:
    async with running_gateway(make_settings(**wired(services))) as api:
        headers = await api.admin_headers()
        contact = await api.http.get("/api/v1/contacts/hidden/overview", headers=headers)
        deal = await api.http.get("/api/v1/deals/hidden/overview", headers=headers)
        anonymous = await api.http.get("/api/v1/contacts/c1/overview")
    assert contact.status_code == 404
    assert contact.headers["content-type"] == "application/problem+json"
    assert deal.status_code == 404
    assert anonymous.status_code == 401


async def test_breaker_opens_after_n_failures_and_closes_after_a_good_trial(
    make_settings: MakeSettings, services: Services
) -> None:
    services.deals.failing.add("/api/v1/deals")
    settings = make_settings(
        **wired(services), CRM_BREAKER_FAILURES=2, CRM_BREAKER_COOLDOWN_SECONDS=0.5
    )
    async with running_gateway(settings) as api:
        headers = await api.admin_headers()

        async def open_deals() -> Any:
            response = await api.http.get("/api/v1/contacts/c2/overview", headers=headers)
            assert response.status_code == 200
            return response.json()["open_deals"]

        for _ in range(2):
            assert (await open_deals())["reason"] == "the deals service answered 503"
        for _ in range(3):
            assert await open_deals() == {"unavailable": True, "reason": "circuit open"}
        # While open the service is left alone.
        assert services.deals.calls_to("/api/v1/deals") == 2

        services.deals.failing.clear()
        results: list[Any] = []

        async def trial_passed() -> bool:
            results.append(await open_deals())
            return isinstance(results[-1], list)

        await wait_until(trial_passed, timeout=5, message="a half-open trial")
        assert services.deals.calls_to("/api/v1/deals") == 3
        # Closed again: every call goes through.
        for _ in range(3):
            assert isinstance(await open_deals(), list)
        assert services.deals.calls_to("/api/v1/deals") == 6


def test_half_open_lets_one_trial_through_and_a_failed_trial_opens_again() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=lambda: now[0])
    for _ in range(3):
        assert breaker.allow()
        breaker.failed()
    assert breaker.state == OPEN and not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()  # the trial
    assert breaker.state == HALF_OPEN and not breaker.allow()
    breaker.failed()
    assert breaker.state == OPEN and not breaker.allow()
    now[0] = 20.0
    assert breaker.allow()
    breaker.abandoned()  # a cancelled trial frees the slot
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.allow()
