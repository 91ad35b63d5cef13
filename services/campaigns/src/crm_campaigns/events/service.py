"""Marketing event use cases: the events, their lists, registration, attendance and statistics."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_campaigns.events.invitations import send_invitations
from crm_campaigns.events.models import ContactDeal, EventParticipant, MarketingEvent
from crm_campaigns.events.schemas import (
    AttendanceResult,
    DealsFollowed,
    EventCreate,
    EventRead,
    EventStats,
    EventUpdate,
    InviteRequest,
    InviteResult,
    ParticipantRead,
    ParticipantStatus,
    PublicEventView,
)
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.recipients.segments import audience_query, reachable
from crm_campaigns.templates.models import Template
from crm_kernel.auth import Principal
from crm_kernel.contracts.campaigns import (
    MarketingEventCreated,
    MarketingEventState,
    MarketingEventUpdated,
    ParticipantAttended,
    ParticipantInvited,
    ParticipantRegistered,
)
from crm_kernel.db import Database, insert_ignoring_duplicates
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, SortKey, paginate
from crm_kernel.problems import Conflict, NotFound, PreconditionFailed, Unprocessable
from crm_kernel.settings import ServiceSettings
from crm_kernel.versioning import check_version

_PARTICIPANTS = cast(Table, EventParticipant.__table__)
S = ParticipantStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(frozen=True)
class Counts:
    invited: int = 0
    registered: int = 0
    attended: int = 0
    no_show: int = 0
    waiting: int = 0  # registered, attendance not marked yet


async def _counts(session: AsyncSession, event_id: str) -> Counts:
    by_status = dict(
        (
            await session.execute(
                select(EventParticipant.status, func.count())
                .where(EventParticipant.event_id == event_id)
                .group_by(EventParticipant.status)
            )
        ).all()
    )
    registered = await session.scalar(
        select(func.count()).where(
            EventParticipant.event_id == event_id, EventParticipant.registered_at.is_not(None)
        )
    )
    return Counts(
        invited=sum(by_status.values()),
        registered=registered or 0,
        attended=by_status.get(S.ATTENDED, 0),
        no_show=by_status.get(S.NO_SHOW, 0),
        waiting=by_status.get(S.REGISTERED, 0),
    )


def _read(event: MarketingEvent, counts: Counts) -> EventRead:
    return EventRead.model_validate(
        {
            **{c: getattr(event, c) for c in EventRead.model_fields if hasattr(event, c)},
            "invited": counts.invited,
            "registered": counts.registered,
            "attended": counts.attended,
        }
    )


async def _publish_state(
    session: AsyncSession,
    kind: type[MarketingEventState],
    event: MarketingEvent,
    counts: Counts,
    actor: str | None,
) -> EventRead:
    read = _read(event, counts)
    state = kind(
        id=event.id,
        name=event.name,
        kind=event.kind,
        starts_at=_iso(event.starts_at),
        place=event.place,
        capacity=event.capacity,
        invited=counts.invited,
        registered=counts.registered,
        attended=counts.attended,
        version=event.version,
        created_at=_iso(event.created_at),
        updated_at=_iso(event.updated_at),
    )
    await add_event(session, state, subject=event.id, actor=actor)
    return read


async def _counters_changed(
    session: AsyncSession, event: MarketingEvent, actor: str | None
) -> None:
    """Bump the event's version and publish its new counters."""
    event.updated_at = utcnow()
    await session.flush()
    await _publish_state(
        session, MarketingEventUpdated, event, await _counts(session, event.id), actor
    )


async def _event(session: AsyncSession, event_id: str) -> MarketingEvent:
    event = await session.get(MarketingEvent, event_id)
    if event is None:
        raise NotFound("No such marketing event.")
    return event


async def _lock(session: AsyncSession, event_id: str) -> MarketingEvent:
    """The event, locked for this transaction (a no-op UPDATE: row lock, SQLite's write lock).

    Registrations and attendance of one event go one at a time, so capacity holds
    and the published counters never go backwards.
    """
    result = await session.execute(
        update(MarketingEvent)
        .where(MarketingEvent.id == event_id)
        .values(capacity=MarketingEvent.capacity)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("No such marketing event.")
    return await _event(session, event_id)


# ---- the events -------------------------------------------------------------------------------


async def create_event(*, db: Database, principal: Principal, data: EventCreate) -> EventRead:
    """Create a marketing event and publish it."""
    now = utcnow()
    async with db.transaction() as session:
        event = MarketingEvent(
            id=str(new_id()),
            name=data.name,
            kind=data.kind.value,
            starts_at=data.starts_at,
            place=data.place or None,
            capacity=data.capacity,
            attribution_days=data.attribution_days,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(event)
        await session.flush()
        return await _publish_state(
            session, MarketingEventCreated, event, Counts(), principal.user_id
        )


async def get_event(*, db: Database, event_id: str) -> EventRead:
    async with db.session() as session:
        event = await _event(session, event_id)
        return _read(event, await _counts(session, event_id))


async def list_events(
    *, db: Database, limit: int, cursor: str | None, upcoming: bool | None
) -> Page[EventRead]:
    """Events by start time, latest first; `upcoming`: only those not started yet (or only past)."""
    query = select(MarketingEvent)
    if upcoming is not None:
        now = utcnow()
        query = query.where(
            MarketingEvent.starts_at >= now if upcoming else MarketingEvent.starts_at < now
        )
    keys = [SortKey(MarketingEvent.starts_at, True), SortKey(MarketingEvent.id, True)]
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
        items = [_read(row[0], await _counts(session, row[0].id)) for row in rows]
    return Page(items=items, next_cursor=next_cursor)


async def update_event(
    *,
    db: Database,
    principal: Principal,
    event_id: str,
    data: EventUpdate,
    if_match: int | None,
) -> EventRead:
    """Change an event's fields; a stale version (If-Match or body) is a 412."""
    try:
        async with db.transaction() as session:
            event = await _event(session, event_id)
            check_version(event.version, if_match, data.version)
            changes = data.model_dump(exclude_unset=True, exclude={"version"})
            for name, value in changes.items():
                setattr(event, name, value.value if name == "kind" else value)
            if "place" in changes:
                event.place = data.place or None
            event.updated_at = utcnow()
            await session.flush()
            return await _publish_state(
                session,
                MarketingEventUpdated,
                event,
                await _counts(session, event_id),
                principal.user_id,
            )
    except StaleDataError as exc:
        raise PreconditionFailed("The event was changed by someone else meanwhile.") from exc


# ---- invitations and registration -------------------------------------------------------------


async def _add_participants(
    session: AsyncSession,
    event_id: str,
    contact_ids: Sequence[str],
    *,
    status: ParticipantStatus,
    now: datetime,
    actor: str | None,
) -> list[str]:
    """Put contacts on the list (those already on it stay as they are); returns the new ones."""
    if not contact_ids:
        return []
    listed = set(
        (
            await session.scalars(
                select(EventParticipant.contact_id).where(
                    EventParticipant.event_id == event_id,
                    EventParticipant.contact_id.in_(contact_ids),
                )
            )
        ).all()
    )
    fresh = [c for c in dict.fromkeys(contact_ids) if c not in listed]
    attended = status is S.ATTENDED
    await insert_ignoring_duplicates(
        session,
        _PARTICIPANTS,
        [
            {
                "event_id": event_id,
                "contact_id": contact_id,
                "status": status.value,
                # A walk-in marked at the door was never invited.
                "invited_at": None if attended else now,
                "registered_at": None,
                "attended_at": now if attended else None,
                "updated_at": now,
            }
            for contact_id in fresh
        ],
    )
    for contact_id in fresh:
        kind = ParticipantAttended if attended else ParticipantInvited
        fact = kind(event_id=event_id, contact_id=contact_id, at=_iso(now))
        await add_event(session, fact, subject=event_id, actor=actor)
    return fresh


async def invite(
    *,
    db: Database,
    settings: ServiceSettings,
    principal: Principal,
    event_id: str,
    data: InviteRequest,
) -> InviteResult:
    """Put a segment's reachable contacts (minus exclusions) on the list as invited.

    With a template, each contact new to the list is sent the invitation, and only
    those it could be sent to (consent, address, not suppressed) join the list.
    """
    now = utcnow()
    async with db.transaction() as session:
        event = await _lock(session, event_id)
        template = await _invitation_template(session, data.template_id)
        audience = await audience_query(
            session, [str(s) for s in data.segment_ids], [str(s) for s in data.exclude_segment_ids]
        )
        contacts = list((await session.scalars(audience)).all())
        listed = set(
            (
                await session.scalars(
                    select(EventParticipant.contact_id).where(EventParticipant.event_id == event_id)
                )
            ).all()
        )
        fresh = [c for c in contacts if c.id not in listed]
        to_list = [c.id for c in fresh]
        if template is not None:
            to_list = await send_invitations(
                session, settings, event=event, contacts=fresh, template=template, now=now
            )
        added: list[str] = []
        for start in range(0, len(to_list), 500):
            added += await _add_participants(
                session,
                event_id,
                to_list[start : start + 500],
                status=S.INVITED,
                now=now,
                actor=principal.user_id,
            )
        if added:
            await _counters_changed(session, event, principal.user_id)
    return InviteResult(
        invited=len(added),
        already_listed=len(contacts) - len(fresh),
        not_sent=len(fresh) - len(to_list),
    )


async def _invitation_template(
    session: AsyncSession, template_id: uuid.UUID | None
) -> Template | None:
    if template_id is None:
        return None
    template = await session.get(Template, str(template_id))
    if template is None or template.deleted_at is not None:
        raise Unprocessable(
            "No such template.",
            errors=[{"field": "template_id", "location": "body", "message": "unknown template"}],
        )
    return template


async def record_invitations(
    session: AsyncSession, event_id: str, contact_ids: Sequence[str]
) -> None:
    """Contacts an invitation campaign reached go on the list as invited (in the caller's transaction)."""
    try:
        event = await _lock(session, event_id)
    except NotFound:
        return  # the campaign names an event that does not exist: nothing to record
    fresh: list[str] = []
    for start in range(0, len(contact_ids), 500):
        fresh += await _add_participants(
            session,
            event_id,
            contact_ids[start : start + 500],
            status=S.INVITED,
            now=utcnow(),
            actor=None,
        )
    if fresh:
        await _counters_changed(session, event, None)


async def _reachable_contact(session: AsyncSession, contact_id: str) -> bool:
    """False only for a contact the directory knows to be deleted, merged or erased."""
    recipient = await session.get(Recipient, contact_id)
    if recipient is None:
        return True  # not replicated yet: the signed token vouches for it
    found = await session.scalar(
        select(Recipient.id).where(Recipient.id == contact_id, reachable())
    )
    return found is not None


async def public_view(*, db: Database, event_id: str, contact_id: str) -> PublicEventView:
    """What the registration page shows; 404 when the event or the contact is gone."""
    async with db.session() as session:
        event = await _event(session, event_id)
        if not await _reachable_contact(session, contact_id):
            raise NotFound("This link is not valid.")
        participant = await session.get(EventParticipant, (event_id, contact_id))
        counts = await _counts(session, event_id)
    return PublicEventView(
        name=event.name,
        starts_at=event.starts_at,
        place=event.place,
        seats_left=_seats_left(event, counts),
        registered=participant is not None and participant.registered_at is not None,
    )


def _seats_left(event: MarketingEvent, counts: Counts) -> int | None:
    return None if event.capacity is None else max(event.capacity - counts.registered, 0)


async def register(*, db: Database, event_id: str, contact_id: str) -> None:
    """Register the contact of a signed link: idempotent; 409 when full or already started."""
    async with db.transaction() as session:
        event = await _lock(session, event_id)
        if not await _reachable_contact(session, contact_id):
            raise NotFound("This link is not valid.")
        participant = await session.get(EventParticipant, (event_id, contact_id))
        if participant is not None and participant.registered_at is not None:
            return
        now = utcnow()
        if event.starts_at <= now:
            raise Conflict("The event has already started; registration is closed.")
        if _seats_left(event, await _counts(session, event_id)) == 0:
            raise Conflict("The event is full.", errors=[{"field": "capacity", "message": "full"}])
        if participant is None:
            participant = EventParticipant(
                event_id=event_id, contact_id=contact_id, invited_at=now, updated_at=now
            )
            session.add(participant)
        participant.registered_at = now
        if participant.status != S.ATTENDED:
            participant.status = S.REGISTERED.value
        participant.updated_at = now
        await session.flush()
        fact = ParticipantRegistered(event_id=event_id, contact_id=contact_id, at=_iso(now))
        await add_event(session, fact, subject=event_id)
        await _counters_changed(session, event, None)


# ---- attendance -------------------------------------------------------------------------------


async def _visible_contacts(
    session: AsyncSession, principal: Principal, contact_ids: Iterable[str]
) -> set[str]:
    """Which of these contacts the caller may see in the directory (reachable ones only)."""
    ids = list(dict.fromkeys(contact_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found |= set(
            (
                await session.scalars(
                    select(Recipient.id).where(
                        Recipient.id.in_(ids[start : start + 500]),
                        reachable(),
                        owner_filter(principal, Recipient.owner_id),
                    )
                )
            ).all()
        )
    return found


async def _mark(
    session: AsyncSession,
    event: MarketingEvent,
    contact_ids: Sequence[str],
    *,
    attended: bool,
    actor: str,
) -> int:
    """Mark attendance of known contacts; walk-ins join the list. Returns how many changed."""
    now = utcnow()
    walk_ins = (
        await _add_participants(
            session, event.id, contact_ids, status=S.ATTENDED, now=now, actor=actor
        )
        if attended
        else []
    )
    changed = len(walk_ins)
    new = set(walk_ins)
    for start in range(0, len(contact_ids), 500):
        rows = (
            await session.scalars(
                select(EventParticipant).where(
                    EventParticipant.event_id == event.id,
                    EventParticipant.contact_id.in_(contact_ids[start : start + 500]),
                )
            )
        ).all()
        for participant in rows:
            if participant.contact_id in new:
                continue
            if attended and participant.status != S.ATTENDED:
                participant.status = S.ATTENDED.value
                participant.attended_at = now
                fact = ParticipantAttended(
                    event_id=event.id, contact_id=participant.contact_id, at=_iso(now)
                )
                await add_event(session, fact, subject=event.id, actor=actor)
            elif not attended:
                # Undo or "did not come": a registered contact becomes a no-show.
                status = S.NO_SHOW if participant.registered_at is not None else S.INVITED
                if participant.status == status:
                    continue
                participant.status = status.value
                participant.attended_at = None
            else:
                continue
            participant.updated_at = now
            changed += 1
    if changed:
        await _counters_changed(session, event, actor)
    return changed


async def mark_attendance(
    *,
    db: Database,
    principal: Principal,
    event_id: str,
    contact_ids: Sequence[str],
    attended: bool,
) -> AttendanceResult:
    """Bulk check-in (or undo) of contacts the caller may see; the rest are reported back."""
    async with db.transaction() as session:
        event = await _lock(session, event_id)
        visible = await _visible_contacts(session, principal, contact_ids)
        known = [c for c in dict.fromkeys(contact_ids) if c in visible]
        changed = await _mark(session, event, known, attended=attended, actor=principal.user_id)
    unknown = [c for c in dict.fromkeys(contact_ids) if c not in visible]
    return AttendanceResult(updated=changed, unknown_contact_ids=unknown)


async def contacts_by_email(
    db: Database, principal: Principal, emails: Iterable[str]
) -> dict[str, list[str]]:
    """Visible reachable contacts by case-folded e-mail (one e-mail may name several)."""
    wanted = list(dict.fromkeys(e.strip().casefold() for e in emails if e.strip()))
    found: dict[str, list[str]] = defaultdict(list)
    async with db.session() as session:
        for start in range(0, len(wanted), 500):
            rows = await session.execute(
                select(Recipient.id, Recipient.email).where(
                    func.lower(Recipient.email).in_(wanted[start : start + 500]),
                    reachable(),
                    owner_filter(principal, Recipient.owner_id),
                )
            )
            for contact_id, email in rows:
                found[(email or "").casefold()].append(contact_id)
    return found


async def visible_contacts(db: Database, principal: Principal, ids: Iterable[str]) -> set[str]:
    async with db.session() as session:
        return await _visible_contacts(session, principal, ids)


async def record_attendees(
    *, db: Database, principal: Principal, event_id: str, contact_ids: Sequence[str]
) -> int:
    """Mark already checked contact ids as attended (the CSV import's write)."""
    async with db.transaction() as session:
        event = await _lock(session, event_id)
        return await _mark(session, event, contact_ids, attended=True, actor=principal.user_id)


async def list_participants(
    *,
    db: Database,
    principal: Principal,
    event_id: str,
    status: ParticipantStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[ParticipantRead]:
    """The check-in list: participants whose contact the caller may see, by contact id."""
    query: Any = (
        select(
            EventParticipant,
            Recipient.first_name,
            Recipient.last_name,
            Recipient.email,
            Recipient.phone,
        )
        .outerjoin(Recipient, Recipient.id == EventParticipant.contact_id)
        .where(EventParticipant.event_id == event_id)
    )
    if not principal.sees_every_owner():
        query = query.where(owner_filter(principal, Recipient.owner_id))
    if status is not None:
        query = query.where(EventParticipant.status == status.value)
    async with db.session() as session:
        await _event(session, event_id)
        rows, next_cursor = await paginate(
            session, query, [SortKey(EventParticipant.contact_id)], limit=limit, cursor=cursor
        )
    items = [
        ParticipantRead(
            contact_id=p.contact_id,
            first_name=first,
            last_name=last,
            email=email,
            phone=phone,
            status=ParticipantStatus(p.status),
            invited_at=p.invited_at,
            registered_at=p.registered_at,
            attended_at=p.attended_at,
        )
        for p, first, last, email, phone in rows
    ]
    return Page(items=items, next_cursor=next_cursor)


# ---- statistics -------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> str | None:
    if not denominator:
        return None
    value = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"))
    return format(value.normalize(), "f")


async def stats(*, db: Database, event_id: str) -> EventStats:
    """Invited, registered, attended, no-shows, attended/invited, and deals that followed."""
    async with db.session() as session:
        event = await _event(session, event_id)
        counts = await _counts(session, event_id)
        started = event.starts_at <= utcnow()
        attendees = select(EventParticipant.contact_id).where(
            EventParticipant.event_id == event_id, EventParticipant.status == S.ATTENDED
        )
        window_end = event.starts_at + timedelta(days=event.attribution_days)
        created = await session.scalar(
            select(func.count()).where(
                ContactDeal.contact_id.in_(attendees),
                ContactDeal.created_at >= event.starts_at,
                ContactDeal.created_at <= window_end,
            )
        )
        won = (
            await session.execute(
                select(ContactDeal.amount, ContactDeal.currency).where(
                    ContactDeal.contact_id.in_(attendees),
                    ContactDeal.won_at >= event.starts_at,
                    ContactDeal.won_at <= window_end,
                )
            )
        ).all()
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    for amount, currency in won:
        try:
            revenue[currency] += Decimal(amount or 0)
        except InvalidOperation:
            continue
    return EventStats(
        invited=counts.invited,
        registered=counts.registered,
        attended=counts.attended,
        # Marked as not come, plus (once it has started) registered without a check-in.
        no_shows=counts.no_show + (counts.waiting if started else 0),
        participation_coefficient=_ratio(counts.attended, counts.invited),
        seats_left=_seats_left(event, counts),
        deals=DealsFollowed(
            days=event.attribution_days,
            created=created or 0,
            won=len(won),
            revenue={c: format(v.normalize(), "f") for c, v in sorted(revenue.items())},
        ),
    )
