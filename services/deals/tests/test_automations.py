"""Pipeline automation: stage-entry rules run once per stay (redelivery too), consent is honoured,
stalled deals are reported once per stay across restarts and replicas."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from crm_deals.deals.models import Deal, StageHistory
from crm_deals.main import create_app
from crm_deals.testing import (
    User,
    contact_state,
    create_deal,
    default_pipeline,
    new_user,
    settings_for,
    stream_events,
    wait_for_events,
)
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactCreated, ContactUpdated
from crm_kernel.db import Database
from crm_kernel.events import Envelope
from crm_kernel.ids import new_id
from crm_kernel.testing import serve_in_process, wait_until

EMAIL, SMS, IN_APP = (
    "crm.notifications.send.email",
    "crm.notifications.send.sms",
    "crm.notifications.send.in_app",
)
TASK = "crm.contacts.task.create"


async def _commands(nats_url: str) -> list[dict[str, Any]]:
    """Every command the service sent to notifications and to contacts (nobody consumes them here)."""
    found = []
    for stream in ("CRM_NOTIFICATIONS_COMMANDS", "CRM_CONTACTS_COMMANDS"):
        found += await stream_events(nats_url, stream)
    return found


async def _wait_commands(
    nats_url: str, deal_id: str, type_: str, count: int
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal found
        found = [
            c["data"]
            for c in await _commands(nats_url)
            if c["type"] == type_ and c["subject"] == deal_id
        ]
        return len(found) >= count

    await wait_until(check, timeout=30, interval=0.1, message=f"{count} x {type_} for {deal_id}")
    return found


async def _rule(api: httpx.AsyncClient, admin: User, stage: dict[str, Any], **action: Any) -> Any:
    body = {
        "name": f"On {stage['name']}: {action['type']}",
        "pipeline_id": stage["pipeline_id"],
        "stage_id": stage["id"],
        "action": action,
    }
    response = await api.post("/automations", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _stages(api: httpx.AsyncClient, admin: User) -> list[dict[str, Any]]:
    pipeline = await default_pipeline(api, admin)
    return [{**s, "pipeline_id": pipeline["id"]} for s in pipeline["stages"]]


async def _contact(
    api: httpx.AsyncClient, bus: Bus, admin: User, *, email: bool, sms: bool, version: int = 1
) -> str:
    """A contact known to the deals replica, with this consent."""
    contact_id = str(uuid.uuid4())
    event = ContactCreated.model_validate(
        contact_state(contact_id, admin.id, version, consent={"email": email, "sms": sms})
    )
    await bus.publish(event.envelope(subject=contact_id))
    probe = await create_deal(api, admin, title="probe", contact_id=contact_id)

    async def known() -> bool:
        response = await api.get(f"/deals/{probe['id']}", headers=admin.headers)
        return response.json()["contact_name"] == "Anna Petrova"

    await wait_until(known, timeout=30, message="contact in the replica")
    return contact_id


async def _move(api: httpx.AsyncClient, user: User, deal_id: str, stage_id: str) -> None:
    response = await api.post(
        f"/deals/{deal_id}/move", json={"stage_id": stage_id}, headers=user.headers
    )
    assert response.status_code == 200, response.text


async def test_a_rule_runs_once_per_entry_into_its_stage_even_when_redelivered(
    api: httpx.AsyncClient, bus: Bus, admin: User, nats_url: str
) -> None:
    stages = await _stages(api, admin)
    first_call = stages[1]
    await _rule(
        api,
        admin,
        first_call,
        type="create_task",
        title="Call {{ contact.first_name }} about {{ deal.title }}",
        due_in_minutes=90,
    )
    await _rule(
        api,
        admin,
        first_call,
        type="send_email",
        subject="Hello {{ contact.first_name }}",
        body="We are glad to talk about {{ deal.title }} ({{ deal.stage }}).",
    )
    await _rule(
        api, admin, first_call, type="notify", role="head_of_sales", title="{{ deal.title }} moved"
    )
    contact_id = await _contact(api, bus, admin, email=True, sms=False)
    deal = await create_deal(api, admin, title="Licences", contact_id=contact_id)
    await _move(api, admin, deal["id"], first_call["id"])
    [task] = await _wait_commands(nats_url, deal["id"], TASK, 1)
    [email] = await _wait_commands(nats_url, deal["id"], EMAIL, 1)
    [notice] = await _wait_commands(nats_url, deal["id"], IN_APP, 1)
    moved = next(
        e
        for e in await stream_events(nats_url)
        if e["type"] == "crm.deals.deal.stage_changed" and e["subject"] == deal["id"]
    )
    entered_at = datetime.fromisoformat(moved["data"]["transition"]["entered_at"])
    assert task["title"] == "Call Anna about Licences"
    assert task["assignee_id"] == admin.id and task["deal_id"] == deal["id"]
    assert datetime.fromisoformat(task["due_at"]) == entered_at + timedelta(minutes=90)
    assert (email["to"], email["contact_id"]) == ("anna@example.com", contact_id)
    assert email["subject"] == "Hello Anna"
    assert email["body_text"] == "We are glad to talk about Licences (First call)."
    assert (notice["role"], notice["title"]) == ("head_of_sales", "Licences moved")

    # The stage event again: as stored (JetStream drops it) and under a new event id.
    envelope = Envelope.model_validate(moved)
    await bus.publish(envelope)
    await bus.publish(envelope.model_copy(update={"id": str(new_id())}))
    # A later deal through the same stage: once its task is out, the copies were handled.
    later = await create_deal(api, admin, title="Later")
    await _move(api, admin, later["id"], first_call["id"])
    await _wait_commands(nats_url, later["id"], TASK, 1)
    for type_ in (TASK, EMAIL, IN_APP):
        sent = [c for c in await _commands(nats_url) if c["subject"] == deal["id"]]
        assert sum(c["type"] == type_ for c in sent) == 1, type_

    # Leaving and entering again is a new stay: the rules run again.
    await _move(api, admin, deal["id"], stages[2]["id"])
    await _move(api, admin, deal["id"], first_call["id"])
    tasks = await _wait_commands(nats_url, deal["id"], TASK, 2)
    assert len({t["key"] for t in tasks}) == 2
    assert len(await _wait_commands(nats_url, deal["id"], EMAIL, 2)) == 2


async def test_a_contact_is_never_messaged_without_consent(
    api: httpx.AsyncClient, bus: Bus, admin: User, nats_url: str
) -> None:
    stages = await _stages(api, admin)
    meeting = stages[3]
    email_rule = await _rule(
        api, admin, meeting, type="send_email", subject="Meeting", body="See you"
    )
    sms_rule = await _rule(
        api, admin, meeting, type="send_sms", body="See you, {{ contact.first_name }}"
    )
    contact_id = await _contact(api, bus, admin, email=False, sms=True)
    deal = await create_deal(api, admin, title="No e-mail", contact_id=contact_id)
    await _move(api, admin, deal["id"], meeting["id"])
    [sms] = await _wait_commands(nats_url, deal["id"], SMS, 1)
    assert (sms["to"], sms["text"]) == ("+79990001122", "See you, Anna")
    assert not [c for c in await _commands(nats_url) if c["type"] == EMAIL]
    runs = await api.get(f"/automations/{email_rule['id']}/runs", headers=admin.headers)
    assert runs.status_code == 200, runs.text
    [run] = runs.json()["items"]
    assert (run["deal_id"], run["outcome"], run["detail"]) == (
        deal["id"],
        "skipped",
        "no email consent",
    )

    # The contact opts in for e-mail and out of SMS: the next entry follows that.
    now = datetime.now(UTC).isoformat()
    updated = ContactUpdated.model_validate(
        contact_state(
            contact_id,
            admin.id,
            2,
            first_name="Anya",
            consent={"email": True, "sms": False},
            updated_at=now,
        )
    )
    await bus.publish(updated.envelope(subject=contact_id))

    async def applied() -> bool:
        response = await api.get(f"/deals/{deal['id']}", headers=admin.headers)
        return response.json()["contact_name"] == "Anya Petrova"

    await wait_until(applied, timeout=30, message="consent change in the replica")
    await _move(api, admin, deal["id"], stages[1]["id"])
    await _move(api, admin, deal["id"], meeting["id"])
    [email] = await _wait_commands(nats_url, deal["id"], EMAIL, 1)
    assert (email["to"], email["subject"]) == ("anna@example.com", "Meeting")
    sms_runs = await api.get(f"/automations/{sms_rule['id']}/runs", headers=admin.headers)
    outcomes = [r["detail"] for r in sms_runs.json()["items"]]
    assert "no sms consent" in outcomes
    assert [c["data"] for c in await _commands(nats_url) if c["type"] == SMS] == [sms]
    # A deal without a contact messages nobody.
    alone = await create_deal(api, admin, title="No contact")
    await _move(api, admin, alone["id"], meeting["id"])

    async def recorded() -> bool:
        response = await api.get(f"/automations/{email_rule['id']}/runs", headers=admin.headers)
        return any(r["deal_id"] == alone["id"] for r in response.json()["items"])

    await wait_until(recorded, timeout=30, message="a run for the deal without contact")
    response = await api.get(f"/automations/{email_rule['id']}/runs", headers=admin.headers)
    run = next(r for r in response.json()["items"] if r["deal_id"] == alone["id"])
    assert run["detail"] == "the deal has no contact"


async def test_rules_are_validated_and_only_for_pipeline_managers(
    api: httpx.AsyncClient, admin: User
) -> None:
    stages = await _stages(api, admin)
    body = {
        "name": "Broken",
        "pipeline_id": stages[0]["pipeline_id"],
        "stage_id": stages[0]["id"],
        "action": {"type": "send_email", "subject": "Hi {{ contact.first_name", "body": "x"},
    }
    broken = await api.post("/automations", json=body, headers=admin.headers)
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "action.subject"
    stalled_on_won = {
        **body,
        "stage_id": stages[4]["id"],
        "action": {"type": "stalled", "after_days": 3},
    }
    refused = await api.post("/automations", json=stalled_on_won, headers=admin.headers)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "stage_id"
    rep = new_user(Role.SALES_REP)
    assert (await api.get("/automations", headers=rep.headers)).status_code == 403
    fine = {**body, "action": {"type": "notify", "title": "x", "role": "admin"}}
    assert (await api.post("/automations", json=fine, headers=rep.headers)).status_code == 403
    created = await api.post("/automations", json=fine, headers=admin.headers)
    assert created.status_code == 201, created.text
    rule = created.json()
    off = await api.patch(
        f"/automations/{rule['id']}",
        json={"active": False},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert off.status_code == 200 and off.json()["active"] is False
    stale = await api.patch(
        f"/automations/{rule['id']}",
        json={"name": "x"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert stale.status_code == 412
    assert (
        await api.delete(f"/automations/{rule['id']}", headers=admin.headers)
    ).status_code == 204
    assert (await api.get(f"/automations/{rule['id']}", headers=admin.headers)).status_code == 404


@contextlib.asynccontextmanager
async def _replica(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(db_url, nats_url, tmp_dir, CRM_STALLED_CHECK_SECONDS=0.2)
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as client:
            yield client


async def _idle_for(db: Database, deal_id: str, days: int) -> None:
    """Pretend the deal entered its stage `days` ago (its open stay and the deal alike)."""
    then = datetime.now(UTC) - timedelta(days=days)
    async with db.transaction() as session:
        await session.execute(update(Deal).where(Deal.id == deal_id).values(stage_entered_at=then))
        await session.execute(
            update(StageHistory)
            .where(StageHistory.deal_id == deal_id, StageHistory.left_at.is_(None))
            .values(entered_at=then)
        )


def _stalled(events: list[dict[str, Any]], deal_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "crm.deals.deal.stalled" and e["subject"] == deal_id]


async def test_a_stalled_deal_is_reported_once_per_stay_across_restarts_and_replicas(
    db_url: str, nats_url: str, tmp_dir: Path, db: Database, admin: User
) -> None:
    async with _replica(db_url, nats_url, tmp_dir) as api:
        stages = await _stages(api, admin)
        rule = await _rule(api, admin, stages[1], type="stalled", after_days=5)
        idle = await create_deal(api, admin, title="Idle", stage_id=stages[1]["id"])
        fresh = await create_deal(api, admin, title="Fresh", stage_id=stages[1]["id"])
        await _idle_for(db, idle["id"], 6)
        await _idle_for(db, fresh["id"], 4)
        events = await wait_for_events(
            nats_url, lambda es: bool(_stalled(es, idle["id"])), "idle deal reported"
        )
        [stalled] = _stalled(events, idle["id"])
        assert stalled["data"]["automation_id"] == rule["id"]
        assert (stalled["data"]["days_in_stage"], stalled["data"]["threshold_days"]) == (6, 5)
    # Restarted as two replicas: the idle deal's stay is not reported again.
    async with _replica(db_url, nats_url, tmp_dir), _replica(db_url, nats_url, tmp_dir) as api:
        later = await create_deal(api, admin, title="Later", stage_id=stages[1]["id"])
        await _idle_for(db, later["id"], 7)
        events = await wait_for_events(
            nats_url, lambda es: bool(_stalled(es, later["id"])), "later deal reported"
        )
        assert len(_stalled(events, idle["id"])) == 1
        assert len(_stalled(events, later["id"])) == 1
        assert _stalled(events, fresh["id"]) == []
        # A new stay in the stage may stall again.
        await _move(api, admin, idle["id"], stages[2]["id"])
        await _move(api, admin, idle["id"], stages[1]["id"])
        await _idle_for(db, idle["id"], 6)
        events = await wait_for_events(
            nats_url, lambda es: len(_stalled(es, idle["id"])) == 2, "second stay reported"
        )
        notices = [
            c
            for c in await _commands(nats_url)
            if c["type"] == IN_APP and c["subject"] == idle["id"]
        ]
        assert len(notices) == 2 and notices[0]["data"]["user_id"] == admin.id
