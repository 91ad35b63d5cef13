"""CSV import: dry run with per-row errors, the background job and its progress, encodings, bad files."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from crm_contacts.testing import Events, auth, user_created, wait_for_events
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.testing import wait_until


async def finished(api: httpx.AsyncClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await api.get(f"/imports/{job_id}", headers=headers)).json()
        return job if job["status"] == "done" else None

    job: dict[str, Any] = await wait_until(done, timeout=30, message="the import to finish")
    return job


async def count(api: httpx.AsyncClient, **params: Any) -> int:
    page = await api.get("/contacts", params={"limit": 200, **params}, headers=auth())
    return len(page.json()["items"])


async def test_mixed_file_dry_run_lists_bad_rows_then_imports_the_good_ones(
    api: httpx.AsyncClient, bus: Bus, events: Events
) -> None:
    seller = str(uuid.uuid4())
    await bus.publish(user_created(seller, Role.SALES_REP, []).envelope())
    company = await api.post(
        "/companies", json={"name": "Acme Corp", "domain": "acme.com"}, headers=auth()
    )
    company_id = company.json()["id"]
    twin = await api.post(
        "/contacts", json={"first_name": "Old", "email": "twin@example.com"}, headers=auth()
    )
    assert twin.status_code == 201
    csv_text = (
        "Имя,Фамилия,Почта,Телефон,Компания,Менеджер,Стадия,Теги\n"
        f"Anna,Petrova,anna@example.com,8 (912) 345-67-89,acme.com,{seller}@example.com,commitment,vip;web\n"
        "Boris,,not-an-email,,,,,\n"
        ",NoFirst,nofirst@example.com,,,,,\n"
        "Clara,,clara@example.com,12,,,,\n"
        "Dan,,dan@example.com,,Nobody Inc,,,\n"
        "Eve,,eve@example.com,,,ghost@example.com,,\n"
        "Fay,,fay@example.com,,,,sleeping,\n"
        "Gus,,gus@example.com\n"
        "Twin,,TWIN@example.com,,,,,\n"
        'Hal,"Smith, Jr.",hal@example.com,+7 912 0000001,ACME CORP,,,\n'
    )
    mapping = {
        "Имя": "first_name",
        "Фамилия": "last_name",
        "Почта": "email",
        "Телефон": "phone",
        "Компания": "company",
        "Менеджер": "owner_email",
        "Стадия": "lifecycle_stage",
        "Теги": "tags",
    }
    params = {"mapping": json.dumps(mapping), "dry_run": "true"}

    async def dry() -> dict[str, Any] | None:
        response = await api.post(
            "/imports",
            params=params,
            files={"file": ("people.csv", csv_text.encode(), "text/csv")},
            headers=auth(),
        )
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        # The directory learns of the seller from the gateway's event, a moment later.
        return report if all(e["line"] != 2 for e in report["errors"]) else None

    report = await wait_until(dry, timeout=30, message="the directory to know the seller")
    assert report["dry_run"] is True and report["total"] == 10
    assert (report["created"], report["skipped"], report["error_count"]) == (2, 1, 7)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (3, "email"),
        (4, "first_name"),
        (5, "phone"),
        (6, "company"),
        (7, "owner_email"),
        (8, "lifecycle_stage"),
        (9, ""),
    ]
    assert all(e["message"] for e in report["errors"])
    assert await count(api) == 1  # the dry run wrote nothing

    started = await api.post(
        "/imports",
        params={"mapping": json.dumps(mapping)},
        files={"file": ("people.csv", csv_text.encode(), "text/csv")},
        headers=auth(),
    )
    assert started.status_code == 202, started.text
    assert started.headers["location"].endswith(started.json()["id"])
    job = await finished(api, started.json()["id"], auth())
    assert job["processed"] == job["total"] == 10
    assert (job["created"], job["skipped"], job["error_count"]) == (2, 1, 7)
    assert [e["line"] for e in job["errors"]] == [3, 4, 5, 6, 7, 8, 9]

    anna = (await api.get("/contacts", params={"q": "anna@example.com"}, headers=auth())).json()
    [anna_contact] = anna["items"]
    assert anna_contact["phone"] == "+79123456789" and anna_contact["company_id"] == company_id
    assert anna_contact["owner_id"] == seller and anna_contact["tags"] == ["vip", "web"]
    assert anna_contact["lifecycle_stage"] == "commitment"
    hal = (await api.get("/contacts", params={"q": "hal@example.com"}, headers=auth())).json()
    assert (
        hal["items"][0]["last_name"] == "Smith, Jr." and hal["items"][0]["company_id"] == company_id
    )
    assert await count(api) == 3
    created = await wait_for_events(events, 3, "crm.contacts.contact.created")
    assert {e.data["email"] for e in created} == {
        "twin@example.com",
        "anna@example.com",
        "hal@example.com",
    }


async def test_cp1251_with_semicolons_and_update_policy(api: httpx.AsyncClient) -> None:
    existing = await api.post(
        "/contacts",
        json={"first_name": "Старое", "email": "olga@example.ru", "position": "Стажёр"},
        headers=auth(),
    )
    csv_text = (
        "first_name;last_name;email;position\r\n"
        "Ольга;Иванова;olga@example.ru;Директор\r\n"
        'Пётр;"Сидоров; мл.";petr@example.ru;Инженер\r\n'
    )
    started = await api.post(
        "/imports",
        params={"duplicate_policy": "update"},
        content=csv_text.encode("cp1251"),
        headers={**auth(), "Content-Type": "text/csv"},
    )
    assert started.status_code == 202, started.text
    assert started.json()["encoding"] == "cp1251" and started.json()["delimiter"] == ";"
    job = await finished(api, started.json()["id"], auth())
    assert (job["created"], job["updated"], job["error_count"]) == (1, 1, 0)
    olga = (await api.get(f"/contacts/{existing.json()['id']}", headers=auth())).json()
    assert (olga["first_name"], olga["last_name"], olga["position"]) == (
        "Ольга",
        "Иванова",
        "Директор",
    )
    assert olga["version"] == 2
    petr = (await api.get("/contacts", params={"q": "сидоров"}, headers=auth())).json()["items"]
    assert [(p["first_name"], p["last_name"]) for p in petr] == [("Пётр", "Сидоров; мл.")]


async def test_a_rep_imports_for_themselves_and_sees_only_their_job(api: httpx.AsyncClient) -> None:
    rep = str(uuid.uuid4())
    csv_text = f"first_name,owner_email\nMine,\nTheirs,{uuid.uuid4()}@example.com\n"
    started = await api.post(
        "/imports", content=csv_text.encode(), headers=auth(Role.SALES_REP, rep)
    )
    job = await finished(api, started.json()["id"], auth(Role.SALES_REP, rep))
    assert job["created"] == 1 and job["errors"][0]["field"] == "owner_email"
    mine = (await api.get("/contacts", headers=auth(Role.SALES_REP, rep))).json()["items"]
    assert [(c["first_name"], c["owner_id"]) for c in mine] == [("Mine", rep)]
    other = await api.get(f"/imports/{job['id']}", headers=auth(Role.SALES_REP))
    assert other.status_code == 404


async def test_bad_files_are_clear_4xx_problems_and_write_nothing(api: httpx.AsyncClient) -> None:
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (b"", {}, "file"),
        (b'first_name,email\n"Anna,anna@example.com\n', {}, "file"),
        (b"\x00\x01\x02binary", {}, "file"),
        (b"first_name,first_name\nA,B\n", {}, "file"),
        (b"name,email\nAnna,a@example.com\n", {}, "mapping"),
        (b"first_name\nAnna\n", {"mapping": json.dumps({"nope": "email"})}, "mapping.nope"),
        (
            b"first_name\nAnna\n",
            {"mapping": json.dumps({"first_name": "password"})},
            "mapping.first_name",
        ),
        (b"first_name\nAnna\n", {"mapping": "[1]"}, "mapping"),
    ]
    for body, params, field in cases:
        response = await api.post(
            "/imports", params=params, content=body, headers={**auth(), "Content-Type": "text/csv"}
        )
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["field"] == field, response.text
    policy = await api.post(
        "/imports", params={"duplicate_policy": "merge"}, content=b"first_name\nA\n", headers=auth()
    )
    assert policy.status_code == 422
    assert await count(api) == 0


async def test_email_checks_match_the_contact_api_for_plain_and_unusual_addresses(
    api: httpx.AsyncClient,
) -> None:
    # Plain addresses take the importer's fast pattern; the rest go through email-validator.
    good = ["Mixed.Case+tag@Example.COM", "ivan@почта.рф", "o'brien@sub.example.org"]
    bad = ["a..b@example.com", "user@mail.test", "x@ab--cd.com", "x@localhost", "@example.com"]
    rows = "".join(f"Person{i},{email}\n" for i, email in enumerate(good + bad))
    response = await api.post(
        "/imports",
        params={"dry_run": "true"},
        content=f"first_name,email\n{rows}".encode(),
        headers={**auth(), "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == len(good)
    for error, email in zip(report["errors"], bad, strict=True):
        direct = await api.post(
            "/contacts", json={"first_name": "Direct", "email": email}, headers=auth()
        )
        assert direct.status_code == 422
        [api_error] = [e for e in direct.json()["errors"] if e["field"] == "email"]
        assert (error["field"], error["message"]) == ("email", api_error["message"])
    assert len(report["errors"]) == len(bad)
