"""The recipient directory: a replica of contacts kept from events, and segments evaluated on it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from crm_campaigns.recipients.models import Recipient, Suppression
from crm_campaigns.recipients.segments import audience_query
from crm_campaigns.testing import (
    contact_event,
    dynamic_segment,
    members,
    publish_all,
    static_segment,
)
from crm_kernel.bus import Bus
from crm_kernel.contracts.contacts import (
    ConsentChanged,
    ContactDeleted,
    ContactErased,
    ContactMerged,
    ContactUpdated,
    SegmentDeleted,
)
from crm_kernel.contracts.reports import ContactScored
from crm_kernel.db import Database
from crm_kernel.testing import wait_until


async def _audience(
    db: Database, segments: list[str], exclude: tuple[str, ...] = (), rfm: tuple[str, ...] = ()
) -> set[str]:
    async with db.session() as session:
        query = await audience_query(session, segments, exclude, rfm)
        return {r.id for r in (await session.scalars(query)).all()}


async def _known(db: Database, contact_id: str, version: int) -> bool:
    async with db.session() as session:
        found = await session.get(Recipient, contact_id)
        return found is not None and found.version >= version


async def test_newest_version_wins_and_late_events_change_nothing(
    api: httpx.AsyncClient, bus: Bus, db: Database
) -> None:
    contact_id = str(uuid.uuid4())
    await publish_all(
        bus,
        [
            contact_event(contact_id, first_name="Third", version=3, kind=ContactUpdated),
            contact_event(contact_id, first_name="First", version=1),
        ],
    )
    await wait_until(lambda: _known(db, contact_id, 3), timeout=20, message="replica")
    marker = str(uuid.uuid4())
    await publish_all(bus, [contact_event(marker)])
    await wait_until(lambda: _known(db, marker, 1), timeout=20, message="marker")
    async with db.session() as session:
        contact = await session.get(Recipient, contact_id)
    assert contact is not None and contact.first_name == "Third"


async def test_static_and_dynamic_segments_minus_exclusions_and_rfm_groups(
    api: httpx.AsyncClient, bus: Bus, db: Database
) -> None:
    vip = contact_event(
        tags=["vip"], lifecycle_stage="commitment", custom={"budget": 5000, "city": "Москва"}
    )
    vip_no_budget = contact_event(tags=["vip"], lifecycle_stage="awareness")
    plain = contact_event(tags=[], custom={"budget": 10})
    listed = contact_event()
    trashed = contact_event(tags=["vip"])
    champion = contact_event()
    static = static_segment()
    dynamic = dynamic_segment({"field": "tags", "op": "has", "value": "vip"})
    rich = dynamic_segment(
        {
            "all": [
                {"field": "custom.budget", "op": "gte", "value": 1000},
                {"field": "custom.city", "op": "eq", "value": "Москва"},
                {"field": "consent.email", "op": "eq", "value": True},
            ]
        }
    )
    # Excluding "lifecycle awareness" must not drop contacts whose stage is unknown.
    excluded = dynamic_segment({"field": "lifecycle_stage", "op": "eq", "value": "awareness"})
    contacts = [vip, vip_no_budget, plain, listed, trashed, champion]
    await publish_all(bus, [*contacts, static, dynamic, rich, excluded])
    await publish_all(bus, members(static.id, [listed.id, plain.id]))
    await publish_all(
        bus,
        [
            contact_event(
                trashed.id, version=2, kind=ContactDeleted, deleted_at=datetime.now(UTC).isoformat()
            )
        ],
    )
    score = ContactScored(
        contact_id=champion.id,
        recency=5,
        frequency=5,
        monetary=5,
        rfm_group="champions",
        revenue_to_date="100",
        predicted_clv="200",
        currency="RUB",
        as_of=datetime.now(UTC).isoformat(),
    )
    await publish_all(bus, [score])

    async def all_in() -> set[str]:
        found = await _audience(db, [static.id, dynamic.id], rfm=("champions",))
        return found if champion.id in found and listed.id in found else set()

    assert await wait_until(all_in, timeout=20, message="segments applied") == {
        vip.id,
        vip_no_budget.id,
        plain.id,
        listed.id,
        champion.id,
    }
    assert await _audience(db, [rich.id]) == {vip.id}
    assert await _audience(db, [static.id, dynamic.id], (excluded.id,)) == {
        vip.id,
        plain.id,
        listed.id,
    }
    assert await _audience(db, [str(uuid.uuid4())]) == set()
    deleted = SegmentDeleted(
        **{**dynamic.model_dump(), "version": 2, "deleted_at": datetime.now(UTC).isoformat()}
    )
    await publish_all(bus, [deleted])
    await wait_until(lambda: _gone(db, dynamic.id), timeout=20, message="segment deleted")


async def _gone(db: Database, segment_id: str) -> bool:
    return await _audience(db, [segment_id]) == set()


async def test_merge_erase_and_consent_follow_contacts(
    api: httpx.AsyncClient, bus: Bus, db: Database
) -> None:
    survivor, loser, erased = (
        contact_event(),
        contact_event(),
        contact_event(email="Gone@Example.com"),
    )
    static = static_segment()
    await publish_all(bus, [survivor, loser, erased, static])
    await publish_all(bus, members(static.id, [loser.id, erased.id]))
    await wait_until(lambda: _audience(db, [static.id]), timeout=20, message="members")
    merged = contact_event(survivor.id, version=2, kind=ContactMerged, merged_id=loser.id)
    gone = ContactErased(
        id=erased.id, erased_at=datetime.now(UTC).isoformat(), email="Gone@Example.com"
    )
    withdrawn = ConsentChanged(
        contact_id=survivor.id,
        channel="email",
        granted=False,
        source="api",
        changed_at=datetime.now(UTC).isoformat(),
    )
    await publish_all(bus, [merged, gone, withdrawn])

    async def settled() -> bool:
        async with db.session() as session:
            row = await session.get(Recipient, survivor.id)
            return await _audience(db, [static.id]) == {survivor.id} and bool(
                row and not row.consent_email
            )

    await wait_until(settled, timeout=20, message="merge and erasure applied")
    async with db.session() as session:
        erased_row = await session.get(Recipient, erased.id)
        suppressed = (await session.scalars(select(Suppression.address))).all()
    assert erased_row is not None and erased_row.erased and erased_row.email is None
    assert erased_row.first_name == ""
    assert "gone@example.com" in suppressed
    # A late update of the erased contact does not bring the person back.
    await publish_all(bus, [contact_event(erased.id, version=9, kind=ContactUpdated)])
    marker = contact_event()
    await publish_all(bus, [marker])
    await wait_until(lambda: _known(db, marker.id, 1), timeout=20, message="marker")
    assert await _audience(db, [static.id]) == {survivor.id}
