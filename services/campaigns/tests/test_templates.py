"""Templates: sandboxed personalisation, unknown variables and injection refused at save time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from crm_campaigns.recipients.models import Recipient
from crm_campaigns.templates.rendering import validate_template
from crm_campaigns.templates.schemas import TemplateCreate
from crm_campaigns.testing import User, contact_event, new_user, publish_all
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.db import Database
from crm_kernel.problems import Unprocessable
from crm_kernel.testing import wait_until

EMAIL = {
    "name": "Welcome",
    "channel": "email",
    "subject": "Hello, {{ contact.first_name | default('клиент') }}!",
    "body_html": "<p>Hi {{ contact.first_name }} from {{ contact.custom.city }}</p>"
    "<p>{{ owner.name }}</p><a href='{{ unsubscribe_url }}'>unsubscribe</a>",
    "body_text": "Hi {{ contact.first_name | default('клиент') }}",
}


async def _create(api: httpx.AsyncClient, user: User, **overrides: Any) -> httpx.Response:
    return await api.post("/templates", json={**EMAIL, **overrides}, headers=user.headers)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ contact|attr('__class__') }}",
        "{{ contact.first_name.__class__.__base__.__subclasses__() }}",
        "{{ '{0.__class__}'.format(contact) }}",
        "{% set x = contact %}{{ x.__init__ }}",
        "{{ 'a' * 100000000 }}",
        "{% for i in range(100000000) %}{% endfor %}",
        "{{ self._TemplateReference__context }}",
        "{{ config }}",
    ],
)
def test_template_injection_fails_safely(source: str) -> None:
    template = TemplateCreate.model_validate({**EMAIL, "body_text": source})
    with pytest.raises(Unprocessable) as refused:
        validate_template(template)
    assert refused.value.errors[0]["field"] in ("body_text", "body")


async def test_unknown_variables_are_named_at_save_time(
    api: httpx.AsyncClient, marketer: User
) -> None:
    response = await _create(api, marketer, subject="Hi {{ contact.frist_name }}")
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["field"] == "subject"
    assert "contact.frist_name" in problem["errors"][0]["message"]
    response = await _create(api, marketer, body_html="{{ discount }}")
    assert response.status_code == 422 and "'discount'" in response.json()["detail"]
    response = await _create(api, marketer, body_text="{% if %}")
    assert response.status_code == 422 and "syntax" in response.json()["detail"]
    response = await _create(api, marketer, body_text="{{ ''.__class__.__mro__ }}")
    assert response.status_code == 422 and "__mro__" in response.json()["detail"]


async def test_preview_personalises_with_fallbacks_and_owner_name(
    api: httpx.AsyncClient,
    marketer: User,
    bus: Bus,
    db: Database,
    add_users: Callable[..., Awaitable[None]],
) -> None:
    owner = new_user(Role.SALES_REP)
    await add_users(owner, names={owner.id: "Иван Петров"})
    named = contact_event(first_name="<Анна>", owner_id=owner.id, custom={"city": "Казань"})
    nameless = contact_event(first_name="", owner_id=owner.id)
    await publish_all(bus, [named, nameless])

    async def replicated() -> bool:
        async with db.session() as session:
            return await session.get(Recipient, nameless.id) is not None

    await wait_until(replicated, timeout=20, message="contacts replicated")
    created = await _create(api, marketer)
    assert created.status_code == 201, created.text
    template = created.json()
    preview = await api.post(
        f"/templates/{template['id']}/preview",
        json={"contact_id": named.id},
        headers=marketer.headers,
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["subject"] == "Hello, <Анна>!"
    assert "Hi &lt;Анна&gt; from Казань" in body["html"]  # HTML is escaped, the subject is not
    assert "Иван Петров" in body["html"]
    fallback = await api.post(
        f"/templates/{template['id']}/preview",
        json={"contact_id": nameless.id},
        headers=marketer.headers,
    )
    assert fallback.json()["subject"] == "Hello, клиент!"
    # A rep reads templates but cannot write them, and previews only their own contacts.
    rep = new_user(Role.SALES_REP)
    assert (await api.get(f"/templates/{template['id']}", headers=rep.headers)).status_code == 200
    assert (await _create(api, rep)).status_code == 403
    hidden = await api.post(
        f"/templates/{template['id']}/preview",
        json={"contact_id": named.id},
        headers=rep.headers,
    )
    assert hidden.status_code == 404
    own = await api.post(
        f"/templates/{template['id']}/preview",
        json={"contact_id": named.id},
        headers=owner.headers,
    )
    assert own.status_code == 200


async def test_sms_templates_and_versioned_updates(api: httpx.AsyncClient, marketer: User) -> None:
    sms = await api.post(
        "/templates",
        json={"name": "SMS", "channel": "sms", "body_text": "{{ contact.first_name }}: -10%"},
        headers=marketer.headers,
    )
    assert sms.status_code == 201, sms.text
    bad = await api.post(
        "/templates",
        json={"name": "SMS", "channel": "sms", "subject": "x", "body_text": "y"},
        headers=marketer.headers,
    )
    assert bad.status_code == 422
    template = sms.json()
    stale = await api.put(
        f"/templates/{template['id']}",
        json={"name": "SMS 2", "channel": "sms", "body_text": "new", "version": 7},
        headers=marketer.headers,
    )
    assert stale.status_code == 412
    updated = await api.put(
        f"/templates/{template['id']}",
        json={"name": "SMS 2", "channel": "sms", "body_text": "new", "version": 1},
        headers=marketer.headers,
    )
    assert updated.status_code == 200 and updated.json()["version"] == 2
    listed = await api.get("/templates", params={"channel": "sms"}, headers=marketer.headers)
    assert [t["name"] for t in listed.json()["items"]] == ["SMS 2"]
    assert (
        await api.delete(f"/templates/{template['id']}", headers=marketer.headers)
    ).status_code == 204
    assert (
        await api.get(f"/templates/{template['id']}", headers=marketer.headers)
    ).status_code == 404
    assert (await api.get("/templates/not-a-uuid", headers=marketer.headers)).status_code == 404
