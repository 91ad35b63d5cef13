"""Deals from other services' events: leads open deals once, offboarding reassigns, merges re-point."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx

from crm_deals.contact_replica import CampaignRef
from crm_deals.testing import (
    User,
    contact_state,
    create_deal,
    deals_of,
    default_pipeline,
    lead_received,
    new_user,
    republish,
    wait_for_events,
)
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.campaigns import CampaignCreated
from crm_kernel.contracts.contacts import ContactCreated, ContactErased, ContactMerged
from crm_kernel.contracts.gateway import UserOffboarded
from crm_kernel.db import Database
from crm_kernel.testing import wait_until

AddUsers = Callable[..., Awaitable[None]]


def _campaign(campaign_id: str) -> CampaignCreated:
    now = datetime.now(UTC).isoformat()
    return CampaignCreated(
        id=campaign_id,
        name="Spring",
        channel="email",
        status="draft",
        created_by=str(uuid.uuid4()),
        version=1,
        created_at=now,
        updated_at=now,
    )


async def test_a_lead_opens_one_deal_even_when_redelivered(
    api: httpx.AsyncClient, bus: Bus, admin: User, nats_url: str, db: Database
) -> None:
    rep = new_user(Role.SALES_REP)
    campaign_id = str(uuid.uuid4())
    await bus.publish(_campaign(campaign_id).envelope(subject=campaign_id))

    async def campaign_known() -> bool:  # another stream: its own pace
        async with db.session() as session:
            return await session.get(CampaignRef, campaign_id) is not None

    await wait_until(campaign_known, timeout=30, message="campaign id kept")
    contact_id = str(uuid.uuid4())
    lead = lead_received(
        contact_id,
        rep.id,
        title="Website: 20 licences",
        amount="1500.50",
        currency="eur",
        utm_campaign=campaign_id,
    )
    envelope = lead.envelope(subject=lead.id)
    await bus.publish(envelope)
    await bus.publish(envelope)  # the same message again
    await republish(bus, lead)  # and the same lead under a new event id
    # A later lead on the same stream: once it has its deal, the copies were handled.
    later = lead_received(str(uuid.uuid4()), rep.id, utm_campaign="unknown-campaign")
    await bus.publish(later.envelope(subject=later.id))
    await deals_of(api, rep, count=1, contact_id=later.contact_id)

    [deal] = await deals_of(api, rep, contact_id=contact_id)
    pipeline = await default_pipeline(api, admin)
    assert deal["title"] == "Website: 20 licences"
    assert deal["owner_id"] == rep.id
    assert (deal["pipeline_id"], deal["stage_id"]) == (pipeline["id"], pipeline["stages"][0]["id"])
    assert (deal["amount"], deal["currency"]) == ("1500.50", "EUR")
    assert (deal["source"], deal["lead_id"]) == ("web_form", lead.id)
    assert deal["source_campaign_id"] == campaign_id
    [other] = await deals_of(api, rep, contact_id=later.contact_id)
    assert other["source_campaign_id"] is None
    events = await wait_for_events(
        nats_url,
        lambda es: sum(e["type"] == "crm.deals.deal.created" for e in es) == 2,
        "two deal.created",
    )
    created = [e["data"] for e in events if e["type"] == "crm.deals.deal.created"]
    assert {c["lead_id"] for c in created} == {lead.id, later.id}
    assert all(c["source"] == "web_form" for c in created)


async def test_a_lead_without_title_is_named_after_its_contact_in_its_rules_pipeline(
    api: httpx.AsyncClient, bus: Bus, admin: User
) -> None:
    created = await api.post("/pipelines", json={"name": "Partners"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    partners = created.json()
    contact_id = str(uuid.uuid4())
    contact = ContactCreated.model_validate(contact_state(contact_id, admin.id))
    await bus.publish(contact.envelope(subject=contact_id))
    lead = lead_received(contact_id, admin.id, pipeline_id=partners["id"], amount="1.005")
    await bus.publish(lead.envelope(subject=lead.id))
    [deal] = await deals_of(api, admin, count=1, contact_id=contact_id)
    assert deal["title"] == "Anna Petrova"
    assert deal["contact_name"] == "Anna Petrova"
    assert (deal["pipeline_id"], deal["stage_id"]) == (partners["id"], partners["stages"][0]["id"])
    assert deal["amount"] is None  # 1.005 RUB is not an amount: the deal opens without one


async def test_offboarding_hands_every_deal_to_the_successor(
    api: httpx.AsyncClient, bus: Bus, admin: User, add_users: AddUsers, nats_url: str
) -> None:
    leaver, successor, bystander = (new_user(Role.SALES_REP) for _ in range(3))
    await add_users(leaver, successor, bystander)
    open_deal = await create_deal(api, leaver, title="Open")
    won = await create_deal(api, leaver, title="Won")
    assert (await api.post(f"/deals/{won['id']}/win", headers=leaver.headers)).status_code == 200
    theirs = await create_deal(api, bystander, title="Not the leaver's")
    offboarded = UserOffboarded(
        user_id=leaver.id, successor_id=successor.id, actor_id=admin.id, at="2026-11-29T10:00:00Z"
    )
    envelope = offboarded.envelope(subject=leaver.id, actor=admin.id)
    await bus.publish(envelope)
    await republish(bus, offboarded)
    moved = await deals_of(api, successor, count=2)
    assert {d["id"] for d in moved} == {open_deal["id"], won["id"]}
    assert await deals_of(api, leaver) == []
    assert (await api.get(f"/deals/{theirs['id']}", headers=bystander.headers)).status_code == 200
    events = await wait_for_events(
        nats_url,
        lambda es: sum(e["type"] == "crm.deals.deal.owner_changed" for e in es) >= 2,
        "owner_changed events",
    )
    changed = [e for e in events if e["type"] == "crm.deals.deal.owner_changed"]
    assert sorted(e["subject"] for e in changed) == sorted([open_deal["id"], won["id"]])
    assert all(e["data"]["previous_owner_id"] == leaver.id for e in changed)
    assert all(e["data"]["owner_id"] == successor.id for e in changed)
    assert all(e["actor"] == admin.id for e in changed)


async def test_a_merge_repoints_deals_and_an_erasure_forgets_the_name(
    api: httpx.AsyncClient, bus: Bus, admin: User, nats_url: str
) -> None:
    survivor, merged = str(uuid.uuid4()), str(uuid.uuid4())
    for contact_id, name in ((survivor, "Anna"), (merged, "Anya")):
        event = ContactCreated.model_validate(contact_state(contact_id, admin.id, first_name=name))
        await bus.publish(event.envelope(subject=contact_id))
    deal = await create_deal(api, admin, contact_id=merged)
    kept = await create_deal(api, admin, contact_id=survivor)
    merge = ContactMerged.model_validate(
        {**contact_state(survivor, admin.id, version=2), "merged_id": merged}
    )
    await bus.publish(merge.envelope(subject=survivor))
    await republish(bus, merge)
    [repointed, _] = await deals_of(api, admin, count=2, contact_id=survivor)
    assert {repointed["id"], _["id"]} == {deal["id"], kept["id"]}
    assert all(d["contact_name"] == "Anna Petrova" for d in (repointed, _))
    events = await wait_for_events(
        nats_url,
        lambda es: any(e["type"] == "crm.deals.deal.updated" for e in es),
        "deal.updated",
    )
    updated = [e["data"] for e in events if e["type"] == "crm.deals.deal.updated"]
    assert len(updated) == 1  # the merged contact's deal, once
    assert (updated[0]["id"], updated[0]["contact_id"]) == (deal["id"], survivor)
    assert updated[0]["changed_fields"] == ["contact_id"]

    erased = ContactErased(id=survivor, erased_at=datetime.now(UTC).isoformat())
    await bus.publish(erased.envelope(subject=survivor))
    late = ContactCreated.model_validate(contact_state(survivor, admin.id, version=3))
    await bus.publish(late.envelope(subject=survivor))  # an old copy arriving late

    async def forgotten() -> bool:
        response = await api.get(f"/deals/{kept['id']}", headers=admin.headers)
        return response.json()["contact_name"] is None

    await wait_until(forgotten, timeout=30, message="the erased name is gone")
    marker = str(uuid.uuid4())
    probe = ContactCreated.model_validate(contact_state(marker, admin.id))
    await bus.publish(probe.envelope(subject=marker))
    probe_deal = await create_deal(api, admin, contact_id=marker)

    async def probe_applied() -> bool:
        response = await api.get(f"/deals/{probe_deal['id']}", headers=admin.headers)
        return response.json()["contact_name"] == "Anna Petrova"

    await wait_until(probe_applied, timeout=30, message="a later contact event applied")
    response = await api.get(f"/deals/{kept['id']}", headers=admin.headers)
    assert response.json()["contact_name"] is None
