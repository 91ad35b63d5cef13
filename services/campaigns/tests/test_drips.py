"""Drip sequences: triggers enrol, steps run once each across restarts and replicas, consent holds."""

from __future__ import annotations

import asyncio
import html
import os
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
from sqlalchemy import select

from crm_campaigns.drips.models import DripSend
from crm_campaigns.main import create_app
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.testing import (
    User,
    contact_event,
    dynamic_segment,
    new_user,
    publish_all,
    settings_for,
)
from crm_kernel.auth import Role
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import ContactUpdated, LeadReceived
from crm_kernel.contracts.deals import DealStageChanged, StageTransition
from crm_kernel.db import Database
from crm_kernel.testing import TEST_JWT_SECRET, free_port, serve_in_process, wait_until

BULK = "CRM_NOTIFICATIONS_BULK_COMMANDS"


@asynccontextmanager
async def _replicas(
    count: int, db_url: str, nats_url: str, tmp_dir: Path
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` replicas of the service on one database and bus, each over real HTTP."""
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            base = await stack.enter_async_context(
                serve_in_process(create_app(settings_for(db_url, nats_url, tmp_dir)))
            )
            clients.append(
                await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=30))
            )
        yield clients


async def _bulk_commands(nats_url: str) -> list[dict[str, Any]]:
    """Every command on the bulk stream (no notifications service consumes it in these tests)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(BULK)
        except nats.js.errors.NotFoundError:
            return []
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            stored = await js.get_msg(BULK, sequence)
            found.append(orjson.loads(stored.data or b"{}")["data"])
        return found
    finally:
        await nc.close()


async def _contacts(bus: Bus, db: Database, *events: Any) -> None:
    await publish_all(bus, events)
    ids = [e.id for e in events]

    async def replicated() -> bool:
        async with db.session() as session:
            found = await session.scalars(select(Recipient.id).where(Recipient.id.in_(ids)))
            return len(found.all()) == len(ids)

    await wait_until(replicated, timeout=30, message="contacts in the directory")


async def _template(client: httpx.AsyncClient, user: User, name: str) -> str:
    body = {
        "name": name,
        "channel": "email",
        "subject": f"{name} for {{{{ contact.first_name }}}}",
        "body_html": f'<p>{name}</p><a href="https://example.com/{name}">more</a>',
        "body_text": name,
    }
    response = await client.post("/api/v1/templates", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _sequence(
    client: httpx.AsyncClient, user: User, trigger: dict[str, Any], steps: list[dict[str, Any]]
) -> str:
    created = await client.post(
        "/api/v1/sequences",
        json={"name": "Welcome", "trigger": trigger, "steps": steps},
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    sequence_id = str(created.json()["id"])
    activated = await client.post(f"/api/v1/sequences/{sequence_id}/activate", headers=user.headers)
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    return sequence_id


def _lead(contact_id: str) -> LeadReceived:
    return LeadReceived(
        id=str(uuid.uuid4()),
        contact_id=contact_id,
        is_new_contact=True,
        owner_id=str(uuid.uuid4()),
        source="web_form",
        received_at=datetime.now(UTC).isoformat(),
    )


def _step_of(command: dict[str, Any]) -> int:
    return int(command["key"].rsplit(":", 1)[1])


async def test_drip_runs_each_step_once_across_a_restart_and_two_replicas(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    marketer = new_user(Role.MARKETER)
    opener = contact_event(first_name="Olga")
    ignorer = contact_event(first_name="Igor")
    refuser = contact_event(first_name="Rita", consent_email=False)
    async with _replicas(1, db_url, nats_url, tmp_dir) as (client,):
        first = await _template(client, marketer, "Hello")
        thanks = await _template(client, marketer, "Thanks")
        reminder = await _template(client, marketer, "Reminder")
        sequence_id = await _sequence(
            client,
            marketer,
            {"kind": "lead_received"},
            [
                {"kind": "wait", "seconds": 1},
                {"kind": "send", "template_id": first},
                {
                    "kind": "branch",
                    "on": "opened",
                    "within_seconds": 20,
                    "then_step": 5,
                    "else_step": 3,
                },
                {"kind": "send", "template_id": reminder},
                {"kind": "exit"},
                {"kind": "send", "template_id": thanks},
            ],
        )
        await _contacts(bus, db, opener, ignorer, refuser)
        await publish_all(bus, [_lead(c.id) for c in (opener, ignorer, refuser)])

        async def first_sends() -> list[dict[str, Any]]:
            found = [c for c in await _bulk_commands(nats_url) if c["source_id"] == sequence_id]
            return found if len(found) >= 2 else []

        sent = await wait_until(first_sends, timeout=30, message="the first step's e-mails")
    # The service is down: every contact waits on the branch.

    assert {c["contact_id"] for c in sent} == {opener.id, ignorer.id}
    assert {_step_of(c) for c in sent} == {1}
    to_opener = next(c for c in sent if c["contact_id"] == opener.id)
    assert to_opener["subject"] == "Hello for Olga"
    assert to_opener["unsubscribe_url"].startswith("http://127.0.0.1:8000/public/u/")
    pixel = re.search(r"/public/o/([^\"']+)", to_opener["body_html"])
    assert pixel is not None

    async with _replicas(2, db_url, nats_url, tmp_dir) as clients:
        opened = await clients[0].get(f"/public/open/{html.unescape(pixel.group(1))}")
        assert opened.status_code == 204, opened.text
        # The other one unsubscribes with the drip e-mail's one-click link: no reminder.
        to_ignorer = next(c for c in sent if c["contact_id"] == ignorer.id)
        token = to_ignorer["unsubscribe_url"].rsplit("/", 1)[1]
        unsubscribed = await clients[1].post(f"/public/unsubscribe/{token}")
        assert unsubscribed.status_code == 200, unsubscribed.text

        async def finished() -> list[Any]:
            response = await clients[1].get(
                f"/api/v1/sequences/{sequence_id}", headers=marketer.headers
            )
            body = response.json()
            return [body] if body["completed"] == 3 else []

        await wait_until(finished, timeout=40, interval=0.2, message="every enrolment completed")
        await asyncio.sleep(1.5)  # a few more ticks of both replicas: nothing more goes out

    commands = [c for c in await _bulk_commands(nats_url) if c["source_id"] == sequence_id]
    keys = Counter(c["key"] for c in commands)
    assert set(keys.values()) == {1}, keys  # no step twice
    steps = {(c["contact_id"], _step_of(c)) for c in commands}
    assert steps == {(opener.id, 1), (opener.id, 5), (ignorer.id, 1)}
    # Never to a contact without consent; their sends are recorded as skipped.
    assert all(c["to"] != refuser.email for c in commands)
    async with db.session() as session:
        skipped = (
            await session.scalars(select(DripSend).where(DripSend.status == "skipped"))
        ).all()
    assert {(s.contact_id, s.step, s.reason) for s in skipped} == {
        (refuser.id, 1, "no_consent"),
        (refuser.id, 3, "no_consent"),
        (ignorer.id, 3, "no_consent"),
    }


async def test_segment_join_and_deal_stage_enrol_contacts(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    marketer = new_user(Role.MARKETER)
    already = contact_event(tags=["vip"])
    joiner = contact_event(tags=[])
    dealer = contact_event()
    segment = dynamic_segment({"field": "tags", "op": "has", "value": "vip"})
    stage_id = str(uuid.uuid4())
    async with _replicas(1, db_url, nats_url, tmp_dir) as (client,):
        await publish_all(bus, [segment])
        await _contacts(bus, db, already, joiner, dealer)
        template = await _template(client, marketer, "Welcome")
        by_segment = await _sequence(
            client,
            marketer,
            {"kind": "segment_joined", "segment_id": segment.id},
            [{"kind": "send", "template_id": template}],
        )
        by_stage = await _sequence(
            client,
            marketer,
            {"kind": "deal_stage_entered", "stage_id": stage_id},
            [{"kind": "send", "template_id": template}],
        )
        now = datetime.now(UTC).isoformat()
        moved = DealStageChanged(
            id=str(uuid.uuid4()),
            title="Deal",
            contact_id=dealer.id,
            pipeline_id=str(uuid.uuid4()),
            stage_id=stage_id,
            owner_id=str(uuid.uuid4()),
            currency="RUB",
            status="open",
            stage_entered_at=now,
            version=2,
            created_at=now,
            updated_at=now,
            transition=StageTransition(
                history_id=str(uuid.uuid4()),
                pipeline_id=str(uuid.uuid4()),
                to_stage_id=stage_id,
                to_position=2,
                to_probability="30",
                to_kind="open",
                entered_at=now,
                direction="forward",
                reason="move",
            ),
        )
        joined = contact_event(joiner.id, tags=["vip"], version=2, kind=ContactUpdated)
        await publish_all(bus, [joined, moved])

        async def sent() -> set[tuple[str, str]]:
            found = {(c["source_id"], c["contact_id"]) for c in await _bulk_commands(nats_url)}
            return found if len(found) >= 2 else set()

        found = await wait_until(sent, timeout=30, interval=0.2, message="drip sends")
        await asyncio.sleep(2.5)  # another segment evaluation: the earlier member stays out
        listed = await client.get(
            f"/api/v1/sequences/{by_segment}/enrolments", headers=marketer.headers
        )
    assert found == {(by_segment, joiner.id), (by_stage, dealer.id)}
    assert [e["contact_id"] for e in listed.json()["items"]] == [joiner.id]
    assert {(c["source_id"], c["contact_id"]) for c in await _bulk_commands(nats_url)} == found


async def test_sequence_input_is_checked(api: httpx.AsyncClient) -> None:
    marketer = new_user(Role.MARKETER)
    rep = new_user(Role.SALES_REP)
    template_id = str(uuid.uuid4())
    steps = [{"kind": "send", "template_id": template_id}]
    trigger = {"kind": "lead_received"}
    denied = await api.post(
        "/sequences", json={"name": "X", "trigger": trigger, "steps": steps}, headers=rep.headers
    )
    assert denied.status_code == 403
    unknown = await api.post(
        "/sequences",
        json={"name": "X", "trigger": trigger, "steps": steps},
        headers=marketer.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "steps.0.template_id"
    backwards = await api.post(
        "/sequences",
        json={
            "name": "X",
            "trigger": trigger,
            "steps": [*steps, {"kind": "branch", "on": "opened", "then_step": 0}],
        },
        headers=marketer.headers,
    )
    assert backwards.status_code == 422
    no_segment = await api.post(
        "/sequences",
        json={"name": "X", "trigger": {"kind": "segment_joined"}, "steps": steps},
        headers=marketer.headers,
    )
    assert no_segment.status_code == 422


async def test_sms_step_needs_sms_consent_and_a_phone(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    marketer = new_user(Role.MARKETER)
    consenting = contact_event(first_name="Sam", phone="+79990000001", consent_sms=True)
    email_only = contact_event(phone="+79990000002", consent_sms=False)
    no_phone = contact_event(consent_sms=True)
    async with _replicas(1, db_url, nats_url, tmp_dir) as (client,):
        template = await client.post(
            "/api/v1/templates",
            json={"name": "SMS", "channel": "sms", "body_text": "Hi {{ contact.first_name }}!"},
            headers=marketer.headers,
        )
        assert template.status_code == 201, template.text
        sequence_id = await _sequence(
            client,
            marketer,
            {"kind": "lead_received"},
            [{"kind": "send", "template_id": template.json()["id"]}],
        )
        await _contacts(bus, db, consenting, email_only, no_phone)
        await publish_all(bus, [_lead(c.id) for c in (consenting, email_only, no_phone)])

        async def done() -> bool:
            response = await client.get(
                f"/api/v1/sequences/{sequence_id}", headers=marketer.headers
            )
            return bool(response.json()["completed"] == 3)

        await wait_until(done, timeout=30, interval=0.2, message="enrolments completed")
        commands = await wait_until(lambda: _bulk_commands(nats_url), timeout=20, message="SMS")
    assert [(c["to"], c["text"], c["key"].rsplit(":", 1)[1]) for c in commands] == [
        ("+79990000001", "Hi Sam!", "0")
    ]
    async with db.session() as session:
        reasons = {s.contact_id: s.reason for s in (await session.scalars(select(DripSend))).all()}
    assert reasons == {consenting.id: None, email_only.id: "no_consent", no_phone.id: "no_address"}


@contextmanager
def _service_process(
    db_url: str, nats_url: str, tmp_dir: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The service as its own process, the way `make run` starts it; killed -9 at the end."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "NATS_URL": nats_url,
        "CRM_JWT_SECRET": TEST_JWT_SECRET,
        "CRM_DATA_DIR": str(tmp_dir),
        "PORT": str(port),
        "LOG_LEVEL": "warning",
    }
    log = open(tmp_dir / f"campaigns-{port}.log", "ab")  # noqa: SIM115 - closed below
    binary = Path(sys.executable).parent / "crm-campaigns"
    process = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()


async def _ready(base: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{base}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_kill_9_mid_step_sends_each_contact_the_step_once(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database
) -> None:
    marketer = new_user(Role.MARKETER)
    contacts = [contact_event() for _ in range(400)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _service_process(db_url, nats_url, tmp_dir, port) as process:
        await wait_until(lambda: _ready(base), timeout=60, message="service up")
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            template = await _template(client, marketer, "Hello")
            sequence_id = await _sequence(
                client,
                marketer,
                {"kind": "lead_received"},
                [{"kind": "send", "template_id": template}],
            )
        await _contacts(bus, db, *contacts)
        await publish_all(bus, [_lead(c.id) for c in contacts])

        async def some_sent() -> bool:
            # The message count alone (cheap), so the kill lands between batches of 100.
            info = await bus.js.stream_info(BULK)
            return info.state.messages > 0

        await wait_until(some_sent, timeout=60, interval=0.01, message="some sent")
        process.send_signal(signal.SIGKILL)  # kill -9, mid-sequence
        process.wait()
    assert len(await _bulk_commands(nats_url)) < 400
    with _service_process(db_url, nats_url, tmp_dir, port):
        await wait_until(lambda: _ready(base), timeout=60, message="service up again")

        async def all_sent() -> bool:
            # The count (one request), not every command read back at each poll.
            return int((await bus.js.stream_info(BULK)).state.messages) >= 400

        await wait_until(all_sent, timeout=90, interval=0.2, message="every contact's e-mail")
        await asyncio.sleep(1.5)  # more ticks: nothing else goes out
    commands = await _bulk_commands(nats_url)
    assert Counter(c["key"] for c in commands).most_common(1)[0][1] == 1
    assert sorted(c["contact_id"] for c in commands) == sorted(c.id for c in contacts)
    assert {c["source_id"] for c in commands} == {sequence_id}
