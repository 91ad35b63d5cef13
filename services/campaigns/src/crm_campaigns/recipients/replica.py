"""Keeps the recipient directory from contacts' and reports' events (idempotent, order-proof)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.recipients.addresses import normalise
from crm_campaigns.recipients.models import (
    FINAL_VERSION,
    Recipient,
    RecipientScore,
    Segment,
    SegmentMember,
    Suppression,
)
from crm_kernel.contracts.contacts import (
    ConsentChanged,
    ContactErased,
    ContactMerged,
    ContactState,
    SegmentMembersChanged,
    SegmentState,
)
from crm_kernel.contracts.reports import ContactScored
from crm_kernel.db import insert_ignoring_duplicates, upsert_if_newer

_RECIPIENTS = cast(Table, Recipient.__table__)
_SEGMENTS = cast(Table, Segment.__table__)
_MEMBERS = cast(Table, SegmentMember.__table__)
_SCORES = cast(Table, RecipientScore.__table__)
_SUPPRESSIONS = cast(Table, Suppression.__table__)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def keep_contacts(session: AsyncSession, contacts: Sequence[ContactState]) -> None:
    """Store each contact's newest state; late or redelivered events change nothing."""
    for c in contacts:
        row = {
            "id": c.id,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "email": c.email,
            "phone": c.phone,
            "position": c.position,
            "company_id": c.company_id,
            "owner_id": c.owner_id,
            "tags": list(c.tags),
            "lifecycle_stage": c.lifecycle_stage,
            "consent_email": c.consent.email,
            "consent_sms": c.consent.sms,
            "custom": dict(c.custom),
            "created_at": _when(c.created_at),
            "updated_at": _when(c.updated_at),
            "deleted_at": _when(c.deleted_at),
            "merged_into": None,
            "erased": False,
            "version": c.version,
        }
        await upsert_if_newer(session, _RECIPIENTS, row, key=["id"], version="version")


def _tombstone(contact_id: str, **marks: object) -> dict[str, object]:
    """A row no later contact event can overwrite, holding nothing personal."""
    return {
        "id": contact_id,
        "first_name": "",
        "last_name": None,
        "email": None,
        "phone": None,
        "position": None,
        "company_id": None,
        "owner_id": "",
        "tags": [],
        "lifecycle_stage": None,
        "consent_email": False,
        "consent_sms": False,
        "custom": {},
        "merged_into": None,
        "erased": False,
        "version": FINAL_VERSION,
        **marks,
    }


async def merge_contact(session: AsyncSession, event: ContactMerged) -> None:
    """The survivor takes the loser's static memberships; the loser is gone for good."""
    await keep_contacts(session, [event])
    loser_segments = select(SegmentMember.segment_id).where(
        SegmentMember.contact_id == event.merged_id
    )
    segment_ids = list((await session.scalars(loser_segments)).all())
    await insert_ignoring_duplicates(
        session, _MEMBERS, [{"segment_id": s, "contact_id": event.id} for s in segment_ids]
    )
    await session.execute(delete(SegmentMember).where(SegmentMember.contact_id == event.merged_id))
    await upsert_if_newer(
        session,
        _RECIPIENTS,
        _tombstone(event.merged_id, merged_into=event.id),
        key=["id"],
        version="version",
    )


async def erase_contact(session: AsyncSession, event: ContactErased) -> None:
    """Forget the person; their addresses stay only as suppressed (normalised) keys."""
    await upsert_if_newer(
        session, _RECIPIENTS, _tombstone(event.id, erased=True), key=["id"], version="version"
    )
    await session.execute(delete(SegmentMember).where(SegmentMember.contact_id == event.id))
    for channel, address in (("email", event.email), ("sms", event.phone)):
        await suppress(session, channel, address, reason="erased")


async def suppress(
    session: AsyncSession, channel: str, address: str | None, *, reason: str
) -> None:
    """Put an address on the local suppression list (the first reason stays)."""
    key = normalise(channel, address)
    if key is None:
        return
    row = {"channel": channel, "address": key, "reason": reason, "created_at": datetime.now(UTC)}
    await insert_ignoring_duplicates(session, _SUPPRESSIONS, [row])


async def change_consent(session: AsyncSession, event: ConsentChanged) -> None:
    """Apply one consent change at once (the next contact event carries it too)."""
    column = Recipient.consent_email if event.channel == "email" else Recipient.consent_sms
    await session.execute(
        update(Recipient)
        .where(Recipient.id == event.contact_id, Recipient.version < FINAL_VERSION)
        .values({column: event.granted})
    )


async def keep_segment(session: AsyncSession, segment: SegmentState) -> None:
    row = {
        "id": segment.id,
        "name": segment.name,
        "kind": segment.kind,
        "filter": segment.filter,
        "deleted_at": _when(segment.deleted_at)
        or (datetime.now(UTC) if segment.type.endswith(".deleted") else None),
        "version": segment.version,
    }
    await upsert_if_newer(session, _SEGMENTS, row, key=["id"], version="version")


async def change_members(session: AsyncSession, event: SegmentMembersChanged) -> None:
    await insert_ignoring_duplicates(
        session, _MEMBERS, [{"segment_id": event.segment_id, "contact_id": c} for c in event.added]
    )
    if event.removed:
        await session.execute(
            delete(SegmentMember).where(
                SegmentMember.segment_id == event.segment_id,
                SegmentMember.contact_id.in_(event.removed),
            )
        )


async def keep_score(session: AsyncSession, event: ContactScored) -> None:
    row = {
        "contact_id": event.contact_id,
        "rfm_group": event.rfm_group,
        "as_of": _when(event.as_of),
    }
    await upsert_if_newer(session, _SCORES, row, key=["contact_id"], version="as_of")
