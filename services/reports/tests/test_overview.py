"""The overview report from contact events: counted once, and only what the caller may see."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.contracts.gateway import UserCreated
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, serve_in_process, wait_until
from crm_reports.main import create_app
from crm_reports.settings import ReportsSettings


@pytest.fixture
async def reports(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReportsSettings(
        DATABASE_URL=db_url, NATS_URL=nats_url, CRM_JWT_SECRET=TEST_JWT_SECRET, CRM_DATA_DIR=tmp_dir
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            yield client


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, name="test")
    yield connected
    await connected.close()


def contact_created(owner_id: str, created_at: str = "2026-03-01T10:00:00+00:00") -> ContactCreated:
    return ContactCreated(
        id=str(uuid.uuid4()),
        first_name="A",
        owner_id=owner_id,
        version=1,
        created_at=created_at,
        updated_at=created_at,
    )


def user(user_id: str, role: Role, team_ids: list[str]) -> UserCreated:
    return UserCreated(
        id=user_id,
        email=f"{user_id}@example.com",
        full_name="U",
        role=role,
        team_ids=team_ids,
        is_active=True,
        version=1,
    )


async def overview(client: httpx.AsyncClient, token: str, **params: str) -> dict[str, object]:
    response = await client.get(
        "/reports/overview", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_redelivered_event_is_counted_once(reports: httpx.AsyncClient, bus: Bus) -> None:
    admin = issue_token(Role.ADMIN)
    envelope = contact_created(str(uuid.uuid4())).envelope()
    await bus.publish(envelope)
    # The same event again, past JetStream's de-duplication (a different message id).
    await bus.publish(envelope, {"Nats-Msg-Id": f"{envelope.id}-again"})
    await bus.publish(contact_created(str(uuid.uuid4())).envelope())
    await wait_until(lambda: overview(reports, admin), message="report")
    await wait_until(lambda: _count(reports, admin, 2), message="two distinct contacts counted")
    info = await bus.js.consumer_info("CRM_CONTACTS", "reports")
    await wait_until(lambda: _acked(bus), message="all acked")
    assert info.config.durable_name == "reports"
    assert (await overview(reports, admin))["contacts"] == 2


async def _count(client: httpx.AsyncClient, token: str, expected: int) -> bool:
    return (await overview(client, token))["contacts"] == expected


async def _acked(bus: Bus) -> bool:
    info = await bus.js.consumer_info("CRM_CONTACTS", "reports")
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_each_role_counts_only_what_it_may_see(reports: httpx.AsyncClient, bus: Bus) -> None:
    team = str(uuid.uuid4())
    head, rep_a, rep_b, outsider = (str(uuid.uuid4()) for _ in range(4))
    for user_id, role, teams in (
        (head, Role.HEAD_OF_SALES, [team]),
        (rep_a, Role.SALES_REP, [team]),
        (rep_b, Role.SALES_REP, [team]),
        (outsider, Role.SALES_REP, []),
    ):
        await bus.publish(user(user_id, role, teams).envelope())
    for owner, count in ((rep_a, 2), (rep_b, 1), (outsider, 3), (head, 1)):
        for _ in range(count):
            await bus.publish(contact_created(owner).envelope())
    admin = issue_token(Role.ADMIN)
    await wait_until(lambda: _count(reports, admin, 7), message="seven contacts")
    # Who is in which team comes from another stream and may land after the contacts.
    head_token = issue_token(Role.HEAD_OF_SALES, head)
    await wait_until(lambda: _count(reports, head_token, 4), message="the head's team's four")
    assert (await overview(reports, issue_token(Role.SALES_REP, rep_a)))["contacts"] == 2
    assert (await overview(reports, issue_token(Role.SALES_REP, outsider)))["contacts"] == 3
    assert (await overview(reports, issue_token(Role.MARKETER)))["contacts"] == 7


async def test_period_counts_contacts_created_within_it(
    reports: httpx.AsyncClient, bus: Bus
) -> None:
    owner = str(uuid.uuid4())
    for day in ("2026-01-15", "2026-02-10", "2026-02-20", "2026-03-05"):
        await bus.publish(contact_created(owner, f"{day}T12:00:00+00:00").envelope())
    admin = issue_token(Role.ADMIN)
    await wait_until(lambda: _count(reports, admin, 4), message="four contacts")
    body = await overview(
        reports, admin, **{"from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
    )
    assert body["contacts_created"] == 2 and body["contacts"] == 4
    naive = await reports.get(
        "/reports/overview",
        params={"from": datetime(2026, 1, 1).isoformat()},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert naive.status_code == 400 and naive.json()["errors"][0]["field"] == "from"
