"""Duplicate suggestions and merging two contacts into one survivor."""

from __future__ import annotations

from difflib import SequenceMatcher

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts import access, search
from crm_contacts.activities.models import Activity
from crm_contacts.audit.service import audit_change
from crm_contacts.common import publish_state, stale, utcnow
from crm_contacts.contacts.models import ConsentEntry, Contact
from crm_contacts.contacts.schemas import ContactRead, DuplicateRead
from crm_contacts.contacts.service import RECORD_TYPE, load, to_read
from crm_contacts.leads.models import Lead
from crm_contacts.requests.models import ClientRequest
from crm_contacts.segments.service import move_memberships
from crm_contacts.tasks.models import Task
from crm_contacts.timeline.models import TimelineEntry
from crm_kernel.auth import Principal
from crm_kernel.contracts.contacts import ConsentChanged, ContactMerged
from crm_kernel.db import Database
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.problems import Unprocessable
from crm_kernel.versioning import check_version

# Candidates fetched per signal, and suggestions returned: both bounded.
CANDIDATES = 200
MAX_SUGGESTIONS = 20
# difflib ratio of two case-folded full names above which they count as the same name.
SIMILAR_NAME = 0.75
# Survivor wins these when it has a value; otherwise the other's value fills it.
FILLED_FIELDS = (
    "last_name",
    "email",
    "phone",
    "company_id",
    "position",
    "lifecycle_stage",
)
# Tables whose rows follow the merged contact to the survivor.
FOLLOWING = (Activity, ClientRequest, Task, TimelineEntry, ConsentEntry, Lead)


def _full_name(contact: Contact) -> str:
    return " ".join(filter(None, (contact.first_name, contact.last_name))).casefold()


def _reasons(contact: Contact, other: Contact) -> list[str]:
    """Why `other` looks like the same person; empty if it does not."""
    reasons = [
        field
        for field in ("email", "phone", "company_id")
        if getattr(contact, field) and getattr(contact, field) == getattr(other, field)
    ]
    if SequenceMatcher(None, _full_name(contact), _full_name(other)).ratio() >= SIMILAR_NAME:
        reasons.append("name")
    # A shared company alone is a colleague, not a twin.
    return reasons if {"email", "phone"} & set(reasons) or len(reasons) >= 2 else []


async def duplicates(*, db: Database, principal: Principal, contact_id: str) -> list[DuplicateRead]:
    """Live contacts the caller sees that look like this one, likeliest first."""
    async with db.session() as session:
        contact = await load(session, principal, contact_id)
        signals = [
            Contact.email == contact.email if contact.email else None,
            Contact.phone == contact.phone if contact.phone else None,
            Contact.company_id == contact.company_id if contact.company_id else None,
            search.contact_name_condition(_full_name(contact), sqlite=db.is_sqlite),
        ]
        found: dict[str, Contact] = {}
        for signal in filter(lambda s: s is not None, signals):
            # One bounded, indexed query per signal (an OR of them defeats the indexes).
            rows = await session.scalars(
                select(Contact)
                .where(
                    signal,  # type: ignore[arg-type]
                    Contact.id != contact.id,
                    Contact.deleted_at.is_(None),
                    owner_filter(principal, Contact.owner_id),
                )
                .limit(CANDIDATES)
            )
            found.update({c.id: c for c in rows})
    scored = [(_reasons(contact, c), c) for c in found.values()]
    ranked = sorted(
        (pair for pair in scored if pair[0]),
        key=lambda pair: (-_score(pair[0]), pair[1].created_at, pair[1].id),
    )
    return [
        DuplicateRead(contact=to_read(c), reasons=reasons, score=_score(reasons))
        for reasons, c in ranked[:MAX_SUGGESTIONS]
    ]


def _score(reasons: list[str]) -> int:
    weights = {"email": 3, "phone": 3, "name": 2, "company_id": 1}
    return sum(weights[r] for r in reasons)


async def _latest_consent(session: AsyncSession, contact_id: str, channel: str) -> bool | None:
    granted: bool | None = await session.scalar(
        select(ConsentEntry.granted)
        .where(ConsentEntry.contact_id == contact_id, ConsentEntry.channel == channel)
        .order_by(ConsentEntry.at.desc(), ConsentEntry.id.desc())
        .limit(1)
    )
    return granted


def _merge_fields(survivor: Contact, other: Contact) -> None:
    """Survivor's non-empty fields win; tags and custom values are united (survivor first)."""
    for name in FILLED_FIELDS:
        if getattr(survivor, name) in (None, "") and getattr(other, name) not in (None, ""):
            setattr(survivor, name, getattr(other, name))
    survivor.tags = sorted(set(survivor.tags) | set(other.tags))
    survivor.custom = {**other.custom, **survivor.custom}


async def _merge_consent(
    session: AsyncSession, survivor: Contact, principal: Principal
) -> list[ConsentChanged]:
    """Per channel the most recent ledger entry of either contact decides (ledgers already joined)."""
    changes = []
    for channel in ("email", "sms"):
        latest = await _latest_consent(session, survivor.id, channel)
        attribute = f"consent_{channel}"
        if latest is None or latest == getattr(survivor, attribute):
            continue
        setattr(survivor, attribute, latest)
        at = utcnow()
        session.add(
            ConsentEntry(
                id=str(new_id()),
                contact_id=survivor.id,
                channel=channel,
                granted=latest,
                source="merge",
                actor_id=principal.user_id,
                at=at,
            )
        )
        changes.append(
            ConsentChanged(
                contact_id=survivor.id,
                channel=channel,
                granted=latest,
                source="merge",
                actor_id=principal.user_id,
                changed_at=at.isoformat(),
                email=survivor.email,
                phone=survivor.phone,
            )
        )
    return changes


def _same_contact() -> Unprocessable:
    return Unprocessable(
        "A contact cannot be merged into itself.",
        errors=[{"field": "other_id", "location": "body", "message": "same as the survivor"}],
    )


async def merge_contacts(
    *,
    db: Database,
    principal: Principal,
    survivor_id: str,
    other_id: str,
    expected_version: int | None,
) -> ContactRead:
    """Merge `other_id` into the survivor: fields by the rules, its history moves, it goes."""
    if survivor_id == other_id:
        raise _same_contact()
    try:
        async with db.transaction() as session:
            survivor = await load(session, principal, survivor_id)
            other = await load(session, principal, other_id)
            access.ensure_may_write(principal, survivor.owner_id)
            access.ensure_may_write(principal, other.owner_id)
            check_version(survivor.version, expected_version)
            before, other_before = to_read(survivor), to_read(other)
            now = utcnow()
            for model in FOLLOWING:
                await session.execute(
                    update(model)
                    .where(model.contact_id == other.id)
                    .values(contact_id=survivor.id)
                    .execution_options(synchronize_session=False)
                )
            # Contacts merged into the other earlier now point at the survivor too.
            await session.execute(
                update(Contact)
                .where(Contact.merged_into == other.id)
                .values(merged_into=survivor.id)
                .execution_options(synchronize_session=False)
            )
            _merge_fields(survivor, other)
            consent_changes = await _merge_consent(session, survivor, principal)
            other.deleted_at = other.updated_at = now
            other.merged_into = survivor.id
            survivor.updated_at = now
            await session.flush()
            read = to_read(survivor)
            audit_change(session, principal, RECORD_TYPE, "merge", before, read)
            audit_change(
                session, principal, RECORD_TYPE, "merged_away", other_before, to_read(other)
            )
            await publish_state(
                session, ContactMerged, read, actor=principal.user_id, merged_id=other.id
            )
            for event in consent_changes:
                await add_event(session, event, subject=survivor.id, actor=principal.user_id)
            await move_memberships(
                session, from_id=other.id, to_id=survivor.id, actor=principal.user_id
            )
    except StaleDataError as exc:
        raise stale("contact") from exc
    return read
