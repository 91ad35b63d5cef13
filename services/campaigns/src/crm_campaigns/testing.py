"""Test support for the campaigns service: settings, users, contacts and segments on the bus,
and a stand-in for the notifications side that reads the bulk stream and reports deliveries.

Used by the campaigns tests (and end-to-end tests); like `crm_kernel.testing` it
needs the dev dependencies and is never imported by the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import func, select

from crm_campaigns.campaigns.models import LedgerRow
from crm_campaigns.recipients.models import Recipient, SegmentMember
from crm_campaigns.settings import CampaignsSettings
from crm_kernel.auth import Role
from crm_kernel.bus import Bus, envelope_message
from crm_kernel.contracts.contacts import (
    Consent,
    ContactCreated,
    SegmentCreated,
    SegmentMembersChanged,
)
from crm_kernel.contracts.deals import StageTransition
from crm_kernel.contracts.notifications import DeliveriesChanged, DeliveryChanged
from crm_kernel.db import Database
from crm_kernel.testing import TEST_JWT_SECRET, issue_token, wait_until


@dataclass(frozen=True)
class User:
    id: str
    role: Role
    team_ids: tuple[str, ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.role, self.id, self.team_ids)}"}


def new_user(role: Role, *team_ids: str) -> User:
    return User(str(uuid.uuid4()), role, tuple(team_ids))


def settings_for(db_url: str, nats_url: str, tmp_dir: Path, **extra: Any) -> CampaignsSettings:
    values: dict[str, Any] = {
        "DATABASE_URL": db_url,
        "NATS_URL": nats_url,
        "CRM_JWT_SECRET": TEST_JWT_SECRET,
        "CRM_DATA_DIR": tmp_dir,
        "CAMPAIGNS_SEND_POLL_SECONDS": 0.05,
        "CAMPAIGNS_SCHEDULER_POLL_SECONDS": 0.1,
        **extra,
    }
    return CampaignsSettings(**values)


def contact_event(
    contact_id: str | None = None,
    *,
    first_name: str = "Anna",
    email: str | None = None,
    owner_id: str | None = None,
    consent_email: bool = True,
    consent_sms: bool = False,
    version: int = 1,
    kind: type[Any] = ContactCreated,
    **fields: Any,
) -> Any:
    """A contact event as the contacts service publishes it (whole state)."""
    contact_id = contact_id or str(uuid.uuid4())
    stamp = datetime.now(UTC).isoformat()
    values: dict[str, Any] = {
        "id": contact_id,
        "first_name": first_name,
        "email": email if email is not None else f"{contact_id[:8]}@example.com",
        "owner_id": owner_id or str(uuid.uuid4()),
        "consent": Consent(email=consent_email, sms=consent_sms),
        "version": version,
        "created_at": stamp,
        "updated_at": stamp,
        **fields,
    }
    return kind(**values)


async def publish_all(bus: Bus, events: Iterable[Any]) -> None:
    results = await bus.publish_batch([envelope_message(e.envelope()) for e in events])
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, failed


def static_segment(segment_id: str | None = None, name: str = "List") -> SegmentCreated:
    stamp = datetime.now(UTC).isoformat()
    return SegmentCreated(
        id=segment_id or str(uuid.uuid4()),
        name=name,
        kind="static",
        owner_id=str(uuid.uuid4()),
        version=1,
        created_at=stamp,
        updated_at=stamp,
    )


def dynamic_segment(filter_: dict[str, Any], segment_id: str | None = None) -> SegmentCreated:
    stamp = datetime.now(UTC).isoformat()
    return SegmentCreated(
        id=segment_id or str(uuid.uuid4()),
        name="Filter",
        kind="dynamic",
        filter=filter_,
        owner_id=str(uuid.uuid4()),
        version=1,
        created_at=stamp,
        updated_at=stamp,
    )


def members(segment_id: str, contact_ids: list[str]) -> list[SegmentMembersChanged]:
    stamp = datetime.now(UTC).isoformat()
    return [
        SegmentMembersChanged(segment_id=segment_id, added=contact_ids[i : i + 1000], at=stamp)
        for i in range(0, len(contact_ids), 1000)
    ]


@dataclass
class FakeNotifications:
    """Plays the notifications service: takes bulk commands, reports each one sent."""

    nats_url: str
    report: bool = True
    commands: list[dict[str, Any]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    @property
    def keys(self) -> Counter[str]:
        return Counter(c["key"] for c in self.commands)

    @property
    def contacts(self) -> set[str]:
        return {c["contact_id"] for c in self.commands}

    async def _run(self) -> None:
        bus = await Bus.connect(self.nats_url, name="fake-notifications")
        await bus.ensure_streams()
        try:
            js = bus.js
            subscription = await js.pull_subscribe(
                "crm.notifications.bulk.>",
                durable="fake-notifications",
                stream="CRM_NOTIFICATIONS_BULK_COMMANDS",
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
            )
            while True:
                try:
                    messages = await subscription.fetch(256, timeout=0.2)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                reports: list[DeliveryChanged] = []
                for data in (d for m in messages for d in _messages(orjson.loads(m.data)["data"])):
                    self.commands.append(data)
                    if self.report:
                        reports.append(
                            DeliveryChanged(
                                notification_id=str(uuid.uuid4()),
                                key=data["key"],
                                channel="email" if "subject" in data else "sms",
                                recipient=data["to"],
                                status="sent",
                                attempts=1,
                                source_type=data.get("source_type"),
                                source_id=data.get("source_id"),
                                contact_id=data.get("contact_id"),
                                at=datetime.now(UTC).isoformat(),
                            )
                        )
                if reports:
                    # Reported as the real service reports bulk traffic: many to an event.
                    await bus.publish(DeliveriesChanged(deliveries=reports).envelope())
                for message in messages:
                    await message.ack()
        finally:
            await bus.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeNotifications]:
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _messages(command: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of a command: itself, or each e-mail of a `SendBulkEmails` with its source."""
    if "emails" not in command:
        return [command]
    source = {"source_type": command.get("source_type"), "source_id": command.get("source_id")}
    return [email | source for email in command["emails"]]


async def audience_of(
    bus: Bus, db: Database, count: int, **contact_fields: Any
) -> tuple[str, list[Any]]:
    """`count` consenting contacts in a new static segment, replicated; (segment id, contacts)."""
    contacts = [contact_event(**contact_fields) for _ in range(count)]
    segment = static_segment()
    await publish_all(bus, [*contacts, segment])
    await publish_all(bus, members(segment.id, [c.id for c in contacts]))

    async def replicated() -> bool:
        async with db.session() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(SegmentMember)
                .where(SegmentMember.segment_id == segment.id)
            )
            known = await session.scalar(
                select(func.count())
                .select_from(Recipient)
                .where(Recipient.id.in_([c.id for c in contacts]))
            )
        return found == count and known == count

    await wait_until(replicated, timeout=60, message="audience replicated")
    return segment.id, contacts


async def create_template(api: httpx.AsyncClient, user: User, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Offer",
        "channel": "email",
        "subject": "Offer for {{ contact.first_name }}",
        "body_html": '<p>Hi {{ contact.first_name }}</p><a href="https://shop.example/offer?a=1&amp;b=2">Go</a>',
        "body_text": "Hi {{ contact.first_name }}",
        **fields,
    }
    response = await api.post("/templates", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_campaign(api: httpx.AsyncClient, user: User, **fields: Any) -> dict[str, Any]:
    response = await api.post("/campaigns", json={"name": "Spring", **fields}, headers=user.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def campaign_action(
    api: httpx.AsyncClient, user: User, campaign_id: str, action: str
) -> dict[str, Any]:
    response = await api.post(f"/campaigns/{campaign_id}/{action}", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ledger(db: Database, campaign_id: str) -> list[LedgerRow]:
    async with db.session() as session:
        rows = await session.scalars(
            select(LedgerRow).where(LedgerRow.campaign_id == campaign_id).order_by(LedgerRow.id)
        )
        return list(rows.all())


def deal_event(
    kind: type[Any], *, contact_id: str, amount: str, currency: str = "RUB", version: int = 1
) -> Any:
    """A deal event as the deals service publishes it (whole state)."""
    stamp = datetime.now(UTC).isoformat()
    deal_id = str(uuid.uuid5(uuid.NAMESPACE_URL, contact_id))
    status = "won" if kind.type.endswith(".won") else "open"
    transition = StageTransition(
        history_id=str(uuid.uuid4()),
        pipeline_id="p",
        to_stage_id="s",
        to_position=0,
        to_probability="10",
        to_kind=status if status == "won" else "open",
        entered_at=stamp,
        direction="created",
        reason="create",
    )
    return kind(
        id=deal_id,
        title="Deal",
        contact_id=contact_id,
        pipeline_id="p",
        stage_id="s",
        owner_id=str(uuid.uuid4()),
        amount=amount,
        currency=currency,
        status=status,
        stage_entered_at=stamp,
        closed_at=stamp if status == "won" else None,
        version=version,
        created_at=stamp,
        updated_at=stamp,
        transition=transition,
    )


async def stream_events(nats_url: str, stream: str = "CRM_CAMPAIGNS") -> list[dict[str, Any]]:
    """Every message stored in a stream, in order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        events = []
        if info.state.messages:
            for sequence in range(info.state.first_seq, info.state.last_seq + 1):
                stored = await js.get_msg(stream, sequence)
                events.append(orjson.loads(stored.data or b"{}"))
        return events
    finally:
        await nc.close()
