"""GET /contacts/{id}/overview and /deals/{id}/overview: parts fetched in parallel, each may be missing."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, Request

from crm_gateway.overviews.parts import (
    Answer,
    Failed,
    Parts,
    items_or_unavailable,
    record_or_null,
    segment,
    unavailable,
)
from crm_gateway.proxy import request_headers
from crm_gateway.state import Gateway, GatewayDep
from crm_kernel.auth import CurrentUser
from crm_kernel.problems import NotFound

router = APIRouter(tags=["overviews"])

# The tasks routes of the contacts service are not built yet (SPEC: tasks); until
# they are, a 404 from the list route means the route is absent, not the contact.
TASKS_ABSENT = "tasks are not available yet"


def _parts(request: Request, gateway: Gateway) -> Parts:
    return Parts(
        upstreams=gateway.upstreams,
        breakers=gateway.breakers,
        # The caller's own token: every service applies its own visibility.
        headers=request_headers(request),
        timeout=gateway.settings.overview_timeout,
    )


def _main_record(answer: Answer | Failed, what: str, record_id: str) -> Any:
    """The record the overview is about: 404 (or a malformed id) makes the whole overview 404."""
    if isinstance(answer, Failed):
        return unavailable(answer.reason)
    if answer.status == 200:
        return answer.body
    if answer.status in (404, 422):
        raise NotFound(f"There is no {what} {record_id}.")
    return unavailable(f"answered {answer.status}")


async def _linked(parts: Parts, main: Any, key: str, service: str, collection: str) -> Any:
    """The record `main[key]` names: null when there is none, unavailable when `main` is."""
    if not isinstance(main, dict):
        return None
    if main.get("unavailable") is True:
        return unavailable(f"depends on an unavailable part: {main.get('reason')}")
    linked_id = main.get(key)
    if not linked_id:
        return None
    return record_or_null(await parts.get(service, f"/{collection}/{segment(str(linked_id))}"))


async def _gathered(
    first: Coroutine[Any, Any, Any], rest: list[Coroutine[Any, Any, Answer | Failed]]
) -> tuple[Any, list[Answer | Failed]]:
    """Run `first` while `rest` run in parallel; if `first` raises, the rest are cancelled."""
    tasks = [asyncio.create_task(call) for call in rest]
    try:
        result = await first
        return result, list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@router.get("/contacts/{contact_id}/overview")
async def contact_overview(
    contact_id: str, request: Request, _caller: CurrentUser, gateway: GatewayDep
) -> dict[str, Any]:
    """The contact, its company, open deals, next tasks and latest timeline, in one answer."""
    parts = _parts(request, gateway)
    limit = str(gateway.settings.overview_limit)
    path = f"/contacts/{segment(contact_id)}"

    async def contact_and_company() -> tuple[Any, Any]:
        contact = _main_record(await parts.get("contacts", path), "contact", contact_id)
        return contact, await _linked(parts, contact, "company_id", "contacts", "companies")

    (contact, company), (deals, tasks, timeline) = await _gathered(
        contact_and_company(),
        [
            parts.get(
                "deals", "/deals", {"contact_id": contact_id, "status": "open", "limit": limit}
            ),
            parts.get(
                "contacts",
                "/tasks",
                {"contact_id": contact_id, "status": "open", "sort": "due_at", "limit": limit},
            ),
            parts.get("contacts", f"{path}/timeline", {"limit": limit}),
        ],
    )
    return {
        "contact": contact,
        "company": company,
        "open_deals": items_or_unavailable(deals),
        "next_tasks": items_or_unavailable(tasks, absent=TASKS_ABSENT),
        "timeline": items_or_unavailable(timeline),
    }


@router.get("/deals/{deal_id}/overview")
async def deal_overview(
    deal_id: str, request: Request, _caller: CurrentUser, gateway: GatewayDep
) -> dict[str, Any]:
    """The deal, its contact, its stage history and its proposals, in one answer."""
    parts = _parts(request, gateway)
    limit = str(gateway.settings.overview_limit)
    path = f"/deals/{segment(deal_id)}"

    async def deal_and_contact() -> tuple[Any, Any]:
        deal = _main_record(await parts.get("deals", path), "deal", deal_id)
        return deal, await _linked(parts, deal, "contact_id", "contacts", "contacts")

    (deal, contact), (history, proposals) = await _gathered(
        deal_and_contact(),
        [
            parts.get("deals", f"{path}/history"),
            parts.get("deals", "/proposals", {"deal_id": deal_id, "limit": limit}),
        ],
    )
    return {
        "deal": deal,
        "contact": contact,
        "history": items_or_unavailable(history),
        "proposals": items_or_unavailable(proposals),
    }
