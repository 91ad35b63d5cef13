"""CSV import: consent columns recorded in the ledger like the API does; `import.finished`."""

from __future__ import annotations

import uuid

import httpx
import pytest

from crm_contacts.imports import worker
from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.testing import wait_until


async def _run(
    api: httpx.AsyncClient, csv_text: str, headers: dict[str, str], **params: str
) -> dict:
    started = await api.post(
        "/imports",
        params=params,
        content=csv_text.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert started.status_code == 202, started.text

    async def done() -> dict | None:
        job = (await api.get(f"/imports/{started.json()['id']}", headers=headers)).json()
        return job if job["status"] == "done" else None

    job: dict = await wait_until(done, timeout=60, message="the import to finish")
    return job


async def _by_email(api: httpx.AsyncClient, email: str) -> dict:
    items = (await api.get("/contacts", params={"q": email}, headers=auth())).json()["items"]
    assert len(items) == 1, items
    contact: dict = items[0]
    return contact


async def test_consent_columns_go_to_the_ledger_with_source_import(
    api: httpx.AsyncClient, events: Events
) -> None:
    rep = str(uuid.uuid4())
    as_rep = auth(Role.SALES_REP, rep)
    existing = await api.post(
        "/contacts",
        json={"first_name": "Old", "email": "old@example.com", "consent": {"sms": True}},
        headers=as_rep,
    )
    csv_text = (
        "first_name,email,Рассылка,SMS\n"
        "Anna,anna@example.com,да,нет\n"
        "Boris,boris@example.com,,yes\n"
        "Clara,clara@example.com,maybe,\n"
        "Old,old@example.com,yes,no\n"
    )
    mapping = '{"first_name": "first_name", "email": "email", "Рассылка": "consent_email", "SMS": "consent_sms"}'
    job = await _run(api, csv_text, as_rep, mapping=mapping, duplicate_policy="update")
    assert (job["created"], job["updated"], job["error_count"]) == (2, 1, 1)
    assert job["errors"] == [
        {"line": 4, "field": "consent_email", "message": "must be true or false"}
    ]

    anna = await _by_email(api, "anna@example.com")
    boris = await _by_email(api, "boris@example.com")
    old = await _by_email(api, "old@example.com")
    assert anna["consent"] == {"email": True, "sms": False}
    assert boris["consent"] == {"email": False, "sms": True}
    assert old["consent"] == {"email": True, "sms": False}

    # Ledger: a new contact's granted channels; an existing one's real changes (both ways).
    ledger = (await api.get(f"/contacts/{anna['id']}/consent", headers=as_rep)).json()
    assert [(e["channel"], e["granted"], e["source"], e["actor_id"]) for e in ledger] == [
        ("email", True, "import", rep)
    ]
    old_ledger = (
        await api.get(f"/contacts/{existing.json()['id']}/consent", headers=as_rep)
    ).json()
    assert sorted((e["channel"], e["granted"], e["source"]) for e in old_ledger) == [
        ("email", True, "import"),
        ("sms", False, "import"),
        ("sms", True, "api"),
    ]

    # Messaging services hear of each change as they do for the API's.
    changed = await wait_for_events(events, 5, "crm.contacts.consent.changed")
    imported = [e for e in changed if e.data["source"] == "import"]
    assert sorted((e.data["email"], e.data["channel"], e.data["granted"]) for e in imported) == [
        ("anna@example.com", "email", True),
        ("boris@example.com", "sms", True),
        ("old@example.com", "email", True),
        ("old@example.com", "sms", False),
    ]
    assert all(e.actor == rep and e.data["actor_id"] == rep for e in imported)


async def test_a_finished_import_is_announced_once_with_its_counts(
    api: httpx.AsyncClient, events: Events
) -> None:
    await api.post(
        "/contacts", json={"first_name": "Twin", "email": "twin@example.com"}, headers=auth()
    )
    csv_text = "first_name,email\nA,a@example.com\nB,not-an-email\nTwin,twin@example.com\nC,c@example.com\n"
    job = await _run(api, csv_text, auth())
    empty = await _run(api, "first_name,email\n", auth())

    announced = await wait_for_events(events, 2, "crm.contacts.import.finished")
    by_job = {e.subject: e for e in announced}
    assert len(announced) == 2 and set(by_job) == {job["id"], empty["id"]}
    data = by_job[job["id"]].data
    assert (
        data["total"],
        data["created"],
        data["updated"],
        data["skipped"],
        data["error_count"],
    ) == (
        4,
        2,
        0,
        1,
        1,
    )
    assert data["job_id"] == job["id"] and data["finished_at"]
    assert (by_job[empty["id"]].data["total"], by_job[empty["id"]].data["created"]) == (0, 0)


async def test_a_job_of_several_batches_imports_as_one_batch_would(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each batch is checked before its transaction; duplicates across batches, errors
    # with their lines and consent still come out as for one batch.
    monkeypatch.setattr(worker, "BATCH", 2)
    csv_text = (
        "first_name,email,phone,consent_sms\n"
        "A,a@example.com,+7 912 000-00-01,yes\n"
        "B,bad-address,,\n"
        "C,c@example.com,8 (912) 000-00-03,\n"
        "D,d@example.com,12,\n"
        "E,a@example.com,,\n"
    )
    job = await _run(api, csv_text, auth())
    assert (job["created"], job["skipped"], job["error_count"]) == (2, 1, 2)
    assert [(e["line"], e["field"]) for e in job["errors"]] == [(3, "email"), (5, "phone")]
    a = await _by_email(api, "a@example.com")
    assert (a["phone"], a["consent"]["sms"]) == ("+79120000001", True)
    assert (await _by_email(api, "c@example.com"))["phone"] == "+79120000003"
