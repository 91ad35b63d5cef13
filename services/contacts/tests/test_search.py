"""Search with ?q=: names, e-mail, phone in any format, company; any script and case; visibility."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from crm_contacts.testing import auth
from crm_kernel.auth import Role


async def post(api: httpx.AsyncClient, path: str, headers: dict[str, str], **body: Any) -> str:
    response = await api.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def found(
    api: httpx.AsyncClient, q: str, headers: dict[str, str] | None = None, path: str = "/contacts"
) -> list[str]:
    response = await api.get(path, params={"q": q}, headers=headers or auth())
    assert response.status_code == 200, (q, response.text)
    return sorted(item["id"] for item in response.json()["items"])


async def test_a_phone_typed_in_any_format_finds_the_contact(api: httpx.AsyncClient) -> None:
    ivan = await post(api, "/contacts", auth(), first_name="Иван", phone="+79123456789")
    near = await post(api, "/contacts", auth(), first_name="Пётр", phone="+79123450000")
    for typed in ("8 (912) 345-67-89", "+7 912 3456789", "9123456789", "79123456789"):
        assert await found(api, typed) == [ivan], typed
    assert await found(api, "912345") == sorted([ivan, near])
    assert await found(api, "+7 912 345 67") == [ivan]
    assert await found(api, "8 (999) 000-00-00") == []


async def test_search_covers_names_email_and_company_in_any_case_and_script(
    api: httpx.AsyncClient,
) -> None:
    romashka = await post(api, "/companies", auth(), name="Ромашка", domain="romashka.ru")
    acme = await post(api, "/companies", auth(), name="Acme Corp", domain="acme.io")
    anna = await post(
        api,
        "/contacts",
        auth(),
        first_name="Анна",
        last_name="Петрова",
        email="anna.petrova@example.com",
        company_id=romashka,
    )
    john = await post(
        api, "/contacts", auth(), first_name="John", last_name="Smith", email="js@mail.io"
    )
    for q, expected in (
        ("анна", [anna]),
        ("анна петрова".upper(), [anna]),  # Cyrillic capitals
        ("петров", [anna]),
        ("Petrova@Example", [anna]),
        ("anna.petrova@example.com", [anna]),
        ("Anna.Petrova@Example.COM", [anna]),  # a whole address: the e-mail index
        ("anna.petrova@example.co", [anna]),  # not (yet) an address: word by word
        ("smith", [john]),
        ("JOHN", [john]),
        ("ромашка", [anna]),
        ("nobody", []),
        ('" OR * ( NEAR', []),
        ("%_", []),
    ):
        assert await found(api, q) == expected, q
    assert await found(api, "рома", path="/companies") == [romashka]
    assert await found(api, "ACME", path="/companies") == [acme]
    assert await found(api, "acme.io", path="/companies") == [acme]

    # The index follows every change: rename, new company, company renamed, trash.
    await api.patch(
        f"/contacts/{john}", json={"last_name": "Brown", "company_id": acme}, headers=auth()
    )
    assert await found(api, "smith") == []
    assert await found(api, "brown") == [john]
    assert await found(api, "acme") == [john]
    await api.patch(f"/companies/{acme}", json={"name": "Globex"}, headers=auth())
    assert await found(api, "globex") == [john]
    assert await found(api, "corp", path="/companies") == []
    assert (await api.delete(f"/contacts/{anna}", headers=auth())).status_code == 204
    assert await found(api, "анна") == []
    trash = await api.get("/contacts", params={"q": "анна", "trash": "true"}, headers=auth())
    assert [c["id"] for c in trash.json()["items"]] == [anna]


async def test_search_finds_only_what_the_caller_may_see(api: httpx.AsyncClient) -> None:
    rep, colleague = str(uuid.uuid4()), str(uuid.uuid4())
    mine = await post(
        api, "/contacts", auth(Role.SALES_REP, rep), first_name="Мария", phone="+79001112233"
    )
    theirs = await post(
        api, "/contacts", auth(Role.SALES_REP, colleague), first_name="Мария", phone="+79001112244"
    )
    assert await found(api, "мария", auth(Role.SALES_REP, rep)) == [mine]
    assert await found(api, "+7 900 111-22-44", auth(Role.SALES_REP, rep)) == []
    assert await found(api, "мария", auth(Role.MARKETER)) == sorted([mine, theirs])
    too_long = await api.get("/contacts", params={"q": "x" * 201}, headers=auth())
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "q"
