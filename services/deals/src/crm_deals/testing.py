"""Test support for the deals service: users with tokens, deal helpers, reads of CRM_DEALS.

Used by the deals tests (and end-to-end tests); like `crm_kernel.testing` it
needs the dev dependencies (httpx) and is never imported by the service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson

from crm_deals.settings import DealsSettings
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import LeadReceived
from crm_kernel.events import IntegrationEvent
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, wait_until


@dataclass(frozen=True)
class User:
    id: str
    role: Role
    team_ids: tuple[str, ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        token = issue_token(self.role, self.id, self.team_ids)
        return {"Authorization": f"Bearer {token}"}


def new_user(role: Role, *team_ids: str) -> User:
    return User(str(uuid.uuid4()), role, tuple(team_ids))


def settings_for(db_url: str, nats_url: str, tmp_dir: Path, **extra: Any) -> DealsSettings:
    return DealsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        **extra,
    )


async def default_pipeline(api: httpx.AsyncClient, user: User) -> dict[str, Any]:
    response = await api.get("/pipelines", headers=user.headers)
    assert response.status_code == 200, response.text
    pipelines = response.json()
    return next(p for p in pipelines if p["is_default"])


async def create_deal(api: httpx.AsyncClient, user: User, **fields: Any) -> dict[str, Any]:
    body = {"title": "Deal", **fields}
    response = await api.post("/deals", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def stream_events(nats_url: str, stream: str = "CRM_DEALS") -> list[dict[str, Any]]:
    """Every message stored in a stream, in order (read with an ephemeral ordered consumer)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        events = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            stored = await js.get_msg(stream, sequence)
            events.append(orjson.loads(stored.data or b"{}"))
        return events
    finally:
        await nc.close()


async def wait_for_events(
    nats_url: str, predicate: Callable[[list[dict[str, Any]]], bool], message: str
) -> list[dict[str, Any]]:
    """Poll the CRM_DEALS stream until `predicate(events)` holds (the relay publishes async)."""
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        found = await stream_events(nats_url)
        return predicate(found)

    await wait_until(check, timeout=30, interval=0.1, message=message)
    return found


def contact_state(
    contact_id: str, owner_id: str, version: int = 1, **fields: Any
) -> dict[str, Any]:
    """The data of a contact event as the contacts service would publish it."""
    now = datetime.now(UTC).isoformat()
    return {
        "id": contact_id,
        "first_name": "Anna",
        "last_name": "Petrova",
        "email": "anna@example.com",
        "phone": "+79990001122",
        "owner_id": owner_id,
        "consent": {"email": False, "sms": False},
        "version": version,
        "created_at": now,
        "updated_at": now,
        **fields,
    }


def lead_received(contact_id: str, owner_id: str, **fields: Any) -> LeadReceived:
    return LeadReceived.model_validate(
        {
            "id": str(uuid.uuid4()),
            "contact_id": contact_id,
            "is_new_contact": True,
            "owner_id": owner_id,
            "source": "web_form",
            "received_at": datetime.now(UTC).isoformat(),
            **fields,
        }
    )


async def republish(bus: Bus, event: IntegrationEvent) -> None:
    """Publish the event again under a new envelope id: past JetStream's de-duplication and the inbox."""
    await bus.publish(event.envelope(subject=getattr(event, "id", None)))


async def deals_of(
    api: httpx.AsyncClient, user: User, count: int | None = None, **filters: Any
) -> list[dict[str, Any]]:
    """The deals the user sees with these filters; with `count`, wait until there are that many."""
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        response = await api.get("/deals", params={"limit": 200, **filters}, headers=user.headers)
        assert response.status_code == 200, response.text
        found = response.json()["items"]
        return count is None or len(found) == count

    await wait_until(check, timeout=30, interval=0.1, message=f"{count} deals with {filters}")
    return found
