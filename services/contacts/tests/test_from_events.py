"""Other services' events: timeline entries, unsubscribes, the task.create command, offboarding."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.campaigns import MessageClicked, MessageOpened, RecipientUnsubscribed
from crm_kernel.contracts.contacts import CreateTask
from crm_kernel.contracts.deals import (
    DealCreated,
    DealStageChanged,
    DealWon,
    ProposalStatusChanged,
    StageTransition,
)
from crm_kernel.contracts.gateway import UserOffboarded
from crm_kernel.contracts.notifications import DeliveriesChanged, DeliveryChanged, DeliveryFailed
from crm_kernel.events import IntegrationEvent
from crm_kernel.testing import wait_until

NOW = "2026-05-01T10:00:00+00:00"


async def create(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    response = await api.post(
        "/contacts", json={"first_name": "Anna", **fields}, headers=headers or auth()
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def transition(reason: str, at: str = NOW) -> StageTransition:
    return StageTransition(
        history_id=str(uuid.uuid4()),
        pipeline_id="p",
        to_stage_id="s2",
        to_position=2,
        to_probability="50",
        to_kind="won" if reason == "win" else "open",
        entered_at=at,
        direction="forward",
        reason=reason,
    )


def deal(kind: type[Any], contact_id: str, deal_id: str, version: int, **extra: Any) -> Any:
    return kind(
        id=deal_id,
        title="Поставка",
        contact_id=contact_id,
        pipeline_id="p",
        stage_id="s2",
        owner_id=str(uuid.uuid4()),
        currency="RUB",
        status="open",
        stage_entered_at=NOW,
        version=version,
        created_at=NOW,
        updated_at=NOW,
        **extra,
    )


async def timeline_types(api: httpx.AsyncClient, contact_id: str) -> list[str]:
    page = await api.get(f"/contacts/{contact_id}/timeline", headers=auth())
    return [e["type"] for e in page.json()["items"] if e["kind"] == "system"]


async def publish(bus: Bus, event: IntegrationEvent, *, twice: bool = False) -> None:
    envelope = event.envelope(subject=getattr(event, "id", None))
    await bus.publish(envelope)
    if twice:  # a redelivery JetStream does not de-duplicate (another message id)
        await bus.publish(envelope, headers={"Nats-Msg-Id": f"again-{envelope.id}"})


async def test_deal_campaign_and_delivery_events_become_timeline_entries_once(
    api: httpx.AsyncClient, bus: Bus
) -> None:
    contact = await create(api)
    cid, deal_id = contact["id"], str(uuid.uuid4())
    await publish(
        bus, deal(DealCreated, cid, deal_id, 1, transition=transition("create")), twice=True
    )
    await publish(bus, deal(DealStageChanged, cid, deal_id, 2, transition=transition("move")))
    # A win is also a stage change: only the `won` entry shows.
    await publish(bus, deal(DealStageChanged, cid, deal_id, 3, transition=transition("win")))
    await publish(bus, deal(DealWon, cid, deal_id, 3, transition=transition("win")), twice=True)
    proposal = ProposalStatusChanged(
        id=str(uuid.uuid4()),
        deal_id=deal_id,
        owner_id=str(uuid.uuid4()),
        currency="RUB",
        items=[],
        total="1000.00",
        status="sent",
        previous_status="draft",
        version=2,
        created_at=NOW,
        updated_at=NOW,
    )
    await publish(bus, proposal)
    fact = {"campaign_id": str(uuid.uuid4()), "contact_id": cid, "channel": "email", "at": NOW}
    await publish(bus, MessageOpened(**fact), twice=True)
    await publish(bus, MessageClicked(**fact, url="https://example.com/offer"))
    failed = DeliveryFailed(
        notification_id=str(uuid.uuid4()),
        key="k",
        channel="sms",
        recipient="+79120000000",
        status="failed",
        attempts=3,
        contact_id=cid,
        error="unreachable",
        at=NOW,
    )
    await publish(bus, failed)

    expected = {
        "deal.created",
        "deal.stage_changed",
        "deal.won",
        "proposal.sent",
        "campaign.message.opened",
        "campaign.message.clicked",
        "notification.failed",
    }

    async def all_there() -> list[str] | None:
        types = await timeline_types(api, cid)
        return types if set(types) == expected else None

    types = await wait_until(all_there, timeout=30, message="the system entries")
    assert sorted(types) == sorted(expected)  # each once, despite the redeliveries
    rep = await api.get(
        f"/contacts/{cid}/timeline", headers=auth(Role.SALES_REP, str(uuid.uuid4()))
    )
    assert rep.status_code == 404


async def test_a_batch_of_bulk_deliveries_gives_each_contact_its_entry_once(
    api: httpx.AsyncClient, bus: Bus
) -> None:
    first, second = await create(api), await create(api, first_name="Boris")

    def delivery(contact_id: str, status: str) -> DeliveryChanged:
        return DeliveryChanged(
            notification_id=str(uuid.uuid4()),
            key=f"campaign:c:{contact_id}:{status}",
            channel="email",
            recipient="reader@example.com",
            status=status,
            attempts=1,
            source_type="campaign",
            source_id="c",
            contact_id=contact_id,
            error="mailbox full" if status == "failed" else None,
            at=NOW,
        )

    batch = DeliveriesChanged(
        deliveries=[
            delivery(first["id"], "sent"),
            delivery(second["id"], "failed"),
            delivery(first["id"], "suppressed"),  # no entry, as its single event gives none
        ]
    )
    await publish(bus, batch, twice=True)

    async def both_there() -> bool:
        return (
            await timeline_types(api, first["id"]),
            await timeline_types(api, second["id"]),
        ) == (
            ["notification.sent"],
            ["notification.failed"],
        )

    await wait_until(both_there, timeout=30, message="an entry per delivery")
    await asyncio.sleep(0.5)  # time for the redelivered copy to add any
    assert await timeline_types(api, first["id"]) == ["notification.sent"]
    assert await timeline_types(api, second["id"]) == ["notification.failed"]


async def test_merged_contacts_entries_follow_the_survivor(
    api: httpx.AsyncClient, bus: Bus
) -> None:
    survivor, other = await create(api), await create(api, first_name="Ann")
    fact = {"campaign_id": str(uuid.uuid4()), "channel": "email", "at": NOW}
    await publish(bus, MessageOpened(**fact, contact_id=other["id"]))

    async def entry_on_other() -> bool:
        return await timeline_types(api, other["id"]) == ["campaign.message.opened"]

    await wait_until(entry_on_other, timeout=30, message="the entry on the other contact")
    merged = await api.post(
        f"/contacts/{survivor['id']}/merge", json={"other_id": other["id"]}, headers=auth()
    )
    assert merged.status_code == 200
    await publish(bus, MessageClicked(**fact, contact_id=other["id"]))

    async def both_on_survivor() -> bool:
        types = await timeline_types(api, survivor["id"])
        return sorted(types) == ["campaign.message.clicked", "campaign.message.opened"]

    await wait_until(both_on_survivor, timeout=30, message="entries re-pointed to the survivor")


async def test_unsubscribe_withdraws_consent_and_announces_it(
    api: httpx.AsyncClient, bus: Bus, events: Events
) -> None:
    contact = await create(api, email="anna@example.com", consent={"email": True, "sms": True})
    unsubscribed = RecipientUnsubscribed(
        contact_id=contact["id"], channel="email", email="anna@example.com", at=NOW
    )
    await publish(bus, unsubscribed, twice=True)
    # Two grants at creation, then the one withdrawal.
    changed = await wait_for_events(events, 3, "crm.contacts.consent.changed")
    withdrawal = changed[-1].data
    assert withdrawal["granted"] is False and withdrawal["source"] == "unsubscribe_link"
    assert withdrawal["email"] == "anna@example.com"
    fetched = (await api.get(f"/contacts/{contact['id']}", headers=auth())).json()
    assert fetched["consent"] == {"email": False, "sms": True}
    ledger = (await api.get(f"/contacts/{contact['id']}/consent", headers=auth())).json()
    assert [(e["channel"], e["granted"], e["source"]) for e in ledger][-1] == (
        "email",
        False,
        "unsubscribe_link",
    )
    assert len(await events("crm.contacts.consent.changed")) == 3


async def test_task_create_command_makes_one_task_per_key(
    api: httpx.AsyncClient, bus: Bus, events: Events
) -> None:
    contact = await create(api)
    assignee = str(uuid.uuid4())
    command = {
        "key": "automation-1:deal-7",
        "title": "Call back",
        "due_at": datetime(2030, 1, 1, tzinfo=UTC).isoformat(),
        "assignee_id": assignee,
        "contact_id": contact["id"],
        "deal_id": str(uuid.uuid4()),
        "remind_before_minutes": 30,
    }
    await publish(bus, CreateTask(**command))
    await publish(bus, CreateTask(**command))  # the same key again: a new message, no new task
    created = await wait_for_events(events, 1, "crm.contacts.task.created")
    assert created[0].data["title"] == "Call back" and created[0].data["assignee_id"] == assignee

    async def listed() -> list[Any] | None:
        page = await api.get("/tasks", params={"assignee_id": assignee}, headers=auth())
        return page.json()["items"] or None

    tasks = await wait_until(listed, timeout=30, message="the task")
    second = {**command, "key": "automation-1:deal-8"}
    await publish(bus, CreateTask(**second))
    await wait_for_events(events, 2, "crm.contacts.task.created")
    assert len(tasks) == 1 and tasks[0]["contact_id"] == contact["id"]
    assert len(await events("crm.contacts.task.created")) == 2


async def test_offboarding_moves_every_record_to_the_successor_once(
    api: httpx.AsyncClient, bus: Bus, events: Events
) -> None:
    leaver, successor, admin = (str(uuid.uuid4()) for _ in range(3))
    mine = [await create(api, owner_id=leaver) for _ in range(2)]
    trashed = await create(api, owner_id=leaver)
    assert (await api.delete(f"/contacts/{trashed['id']}", headers=auth())).status_code == 204
    company = await api.post("/companies", json={"name": "Co", "owner_id": leaver}, headers=auth())
    other = await create(api)
    offboarded = UserOffboarded(user_id=leaver, successor_id=successor, actor_id=admin, at=NOW)
    await publish(bus, offboarded, twice=True)

    job = await wait_for_events(events, 1, "crm.contacts.owner.reassigned")
    assert job[0].data["contacts"] == 3 and job[0].data["companies"] == 1
    assert job[0].data["owner_id"] == successor and job[0].data["reason"] == "offboarding"
    changed = await events("crm.contacts.contact.owner_changed")
    assert {e.subject for e in changed} == {c["id"] for c in [*mine, trashed]}
    assert all(e.data["previous_owner_id"] == leaver for e in changed)
    assert len(await events("crm.contacts.company.owner_changed")) == 1
    for contact in mine:
        fetched = (await api.get(f"/contacts/{contact['id']}", headers=auth())).json()
        assert fetched["owner_id"] == successor
    fetched_company = await api.get(f"/companies/{company.json()['id']}", headers=auth())
    assert fetched_company.json()["owner_id"] == successor
    assert (await api.get(f"/contacts/{other['id']}", headers=auth())).json()[
        "owner_id"
    ] != successor
    audit = await api.get(
        "/audit", params={"action": "reassign", "actor_id": admin}, headers=auth()
    )
    assert len(audit.json()["items"]) == 4
    assert len(await events("crm.contacts.owner.reassigned")) == 1
