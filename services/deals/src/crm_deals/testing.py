"""Test support for the deals service: users with tokens, deal helpers, reads of CRM_DEALS.

Used by the deals tests (and end-to-end tests); like `crm_kernel.testing` it
needs the dev dependencies (httpx) and is never imported by the service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson

from crm_deals.settings import DealsSettings
from crm_kernel.auth import Role
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
