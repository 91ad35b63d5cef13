"""CSV import writes its events and audit rows in bulk, without a model per row: they must
still be exactly what the contact API shows and what the kernel's outbox would write."""

from __future__ import annotations

import uuid

import httpx

from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.contracts.contacts import ConsentChanged, ContactCreated
from crm_kernel.testing import wait_until


async def test_created_events_and_audit_show_each_contact_as_the_api_does(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep = str(uuid.uuid4())
    as_rep = auth(Role.SALES_REP, rep)
    company = await api.post("/companies", json={"name": "Acme Corp"}, headers=as_rep)
    csv_text = (
        "first_name,last_name,email,phone,company,position,tags,lifecycle_stage,consent_sms\n"
        "Anna,Петрова,Anna@Example.com,8 (912) 345-67-89,acme corp,CEO,b;a;b,commitment,да\n"
        "Boris,,,+7 912 000-00-02,,,,,\n"
    )
    started = await api.post(
        "/imports", content=csv_text.encode(), headers={**as_rep, "Content-Type": "text/csv"}
    )
    assert started.status_code == 202, started.text

    async def done() -> dict | None:
        job = (await api.get(f"/imports/{started.json()['id']}", headers=as_rep)).json()
        return job if job["status"] == "done" else None

    job = await wait_until(done, timeout=30, message="the import to finish")
    assert (job["created"], job["error_count"]) == (2, 0)

    created = await wait_for_events(events, 2, "crm.contacts.contact.created")
    assert len(created) == 2
    for envelope in created:
        shown = (await api.get(f"/contacts/{envelope.subject}", headers=as_rep)).json()
        assert envelope.data == shown
        assert ContactCreated.model_validate(envelope.data).model_dump(mode="json") == shown
        assert (envelope.source, envelope.actor, envelope.dataversion) == ("/contacts", rep, 1)
        audit = (
            await api.get("/audit", params={"record_id": envelope.subject}, headers=auth())
        ).json()["items"]
        assert [(a["action"], a["before"], a["after"]) for a in audit] == [("create", None, shown)]
    anna = next(e.data for e in created if e.data["first_name"] == "Anna")
    assert (anna["email"], anna["phone"], anna["tags"]) == (
        "anna@example.com",
        "+79123456789",
        ["a", "b"],
    )
    assert anna["company_id"] == company.json()["id"] and anna["owner_id"] == rep

    [consent] = await wait_for_events(events, 1, "crm.contacts.consent.changed")
    ConsentChanged.model_validate(consent.data)
    assert consent.subject == anna["id"] and consent.actor == rep
    assert {k: v for k, v in consent.data.items() if k != "changed_at"} == {
        "contact_id": anna["id"],
        "channel": "sms",
        "granted": True,
        "source": "import",
        "actor_id": rep,
        "email": "anna@example.com",
        "phone": "+79123456789",
    }
