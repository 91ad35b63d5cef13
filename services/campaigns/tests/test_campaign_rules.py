"""Campaign definitions and transitions: who may do what, what is refused, and the audience
rules (consent per channel, suppression, one message per address)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from crm_campaigns.testing import (
    User,
    audience_of,
    contact_event,
    create_campaign,
    create_template,
    ledger,
    members,
    new_user,
    publish_all,
    static_segment,
)
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactErased
from crm_kernel.db import Database
from crm_kernel.testing import wait_until


async def test_roles_validation_and_transitions(
    api: httpx.AsyncClient, marketer: User, bus: Bus, db: Database
) -> None:
    template = await create_template(api, marketer)
    sms = await create_template(
        api, marketer, channel="sms", subject=None, body_html=None, body_text="Hi"
    )
    rep = new_user(Role.SALES_REP)
    body = {"name": "C", "template_id": template["id"], "segment_ids": [str(uuid.uuid4())]}
    assert (await api.post("/campaigns", json=body, headers=rep.headers)).status_code == 403
    wrong = await api.post(
        "/campaigns", json={**body, "template_id": sms["id"]}, headers=marketer.headers
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "template_id"
    for bad in (
        {"cost": "10"},
        {"variants": [{"name": "A"}]},
        {"rate_per_second": 0},
        {"ab_metric": "likes"},
    ):
        refused = await api.post("/campaigns", json={**body, **bad}, headers=marketer.headers)
        assert refused.status_code == 422, bad
    campaign = await create_campaign(api, marketer, **body)
    assert campaign["status"] == "draft" and campaign["rate_per_second"] == 100
    url = f"/campaigns/{campaign['id']}"
    assert (await api.post(f"{url}/pause", headers=marketer.headers)).status_code == 409
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    scheduled = await api.post(
        f"{url}/schedule", json={"scheduled_at": at}, headers=marketer.headers
    )
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    stale = await api.put(url, json={**body, "version": 1}, headers=marketer.headers)
    assert stale.status_code == 412
    back = await api.put(url, json={**body, "version": 2}, headers=marketer.headers)
    assert back.status_code == 200 and back.json()["status"] == "draft"
    listed = await api.get("/campaigns", headers=rep.headers)
    assert listed.status_code == 200 and campaign["id"] in [c["id"] for c in listed.json()["items"]]
    sent = await api.post(f"{url}/send", headers=marketer.headers)
    assert sent.status_code == 200 and sent.json()["progress"]["audience"] == 0
    assert (await api.post(f"{url}/send", headers=marketer.headers)).status_code == 409
    assert (await api.put(url, json=body, headers=marketer.headers)).status_code == 409

    async def finished() -> bool:
        return (await api.get(url, headers=marketer.headers)).json()["status"] == "sent"

    await wait_until(finished, message="an empty campaign is sent at once")
    draft = await create_campaign(api, marketer, **body)
    assert (
        await api.delete(f"/campaigns/{draft['id']}", headers=marketer.headers)
    ).status_code == 204
    assert (await api.get(f"/campaigns/{draft['id']}", headers=marketer.headers)).status_code == 404
    assert (await api.get("/campaigns/nope", headers=marketer.headers)).status_code == 404


async def test_sms_audience_needs_sms_consent_and_gets_one_message_per_number(
    api: httpx.AsyncClient, marketer: User, bus: Bus, db: Database
) -> None:
    same_a = contact_event(phone="+7 912 345-67-89", consent_sms=True)
    same_b = contact_event(phone="+79123456789", consent_sms=True)
    no_consent = contact_event(phone="+79990000001", consent_sms=False)
    no_phone = contact_event(consent_sms=True)
    other = contact_event(phone="+79990000002", consent_sms=True)
    segment = static_segment()
    contacts = [same_a, same_b, no_consent, no_phone, other]
    await publish_all(bus, [*contacts, segment])
    await publish_all(bus, members(segment.id, [c.id for c in contacts]))
    email_segment, _ = await audience_of(bus, db, 1)  # waits for the replica to settle
    template = await create_template(
        api,
        marketer,
        channel="sms",
        subject=None,
        body_html=None,
        body_text="Hi {{ contact.first_name }}",
    )
    campaign = await create_campaign(
        api, marketer, channel="sms", template_id=template["id"], segment_ids=[segment.id]
    )
    started = await api.post(f"/campaigns/{campaign['id']}/send", headers=marketer.headers)
    assert started.status_code == 200, started.text
    rows = await ledger(db, campaign["id"])
    assert sorted(r.address_key for r in rows) == ["+79123456789", "+79990000002"]
    assert {r.contact_id for r in rows} == {min(same_a.id, same_b.id), other.id}
    assert email_segment
    # An erasure leaves the ledger's counts but not the person's number.
    await publish_all(bus, [ContactErased(id=other.id, erased_at=datetime.now(UTC).isoformat())])

    async def forgotten() -> bool:
        erased = [r for r in await ledger(db, campaign["id"]) if r.contact_id == other.id]
        return erased[0].address == "" and erased[0].address_key.startswith("erased:")

    await wait_until(forgotten, message="the erased number forgotten")
