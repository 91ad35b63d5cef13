"""Lead intake: de-duplicate against the base, assign an owner, record the lead, announce it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts import access
from crm_contacts.activities.models import Activity
from crm_contacts.activities.service import to_read as activity_read
from crm_contacts.audit.service import record
from crm_contacts.common import publish_state, utcnow
from crm_contacts.companies.models import Company
from crm_contacts.contacts.models import Contact
from crm_contacts.contacts.service import to_read as contact_read
from crm_contacts.custom_fields.service import validate_custom
from crm_contacts.leads import assign
from crm_contacts.leads.models import Lead
from crm_contacts.leads.schemas import UTM_FIELDS, LeadCreate, LeadRead, LeadUpdate, PublicLead
from crm_contacts.phones import to_e164
from crm_kernel.auth import Principal
from crm_kernel.contracts.contacts import ActivityCreated, ContactCreated, LeadReceived
from crm_kernel.db import Database, casefold
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import NotFound

SORTABLE = {"received_at": Lead.received_at}


@dataclass(frozen=True)
class Intake:
    """One lead to take in, however it came (API, web form)."""

    data: PublicLead
    source: str
    actor_id: str | None  # None: a web visitor
    rule_id: str | None = None
    form_key: str | None = None


def to_read(lead: Lead) -> LeadRead:
    return LeadRead.model_validate(lead)


async def _existing_contact(
    session: AsyncSession, email: str | None, phone: str | None
) -> Contact | None:
    """The oldest live contact with this e-mail or phone, in the whole base."""
    matches = [Contact.email == email] if email else []
    matches += [Contact.phone == phone] if phone else []
    query = select(Contact).where(Contact.deleted_at.is_(None), or_(*matches))
    return (await session.scalars(query.order_by(Contact.created_at, Contact.id).limit(1))).first()


async def _company_id(session: AsyncSession, name: str | None) -> str | None:
    """A live company whose name or domain is what the lead typed, if there is one."""
    if not name:
        return None
    wanted = name.strip().lower()
    query = select(Company.id).where(
        Company.deleted_at.is_(None),
        or_(casefold(Company.name) == wanted, Company.domain == wanted),
    )
    return (await session.scalars(query.order_by(Company.created_at).limit(1))).first()


def _summary(intake: Intake, title: str | None, custom: dict[str, Any]) -> str:
    lines = [f"Lead via {intake.source}" + (f": {title}" if title else "")]
    if intake.data.company:
        lines.append(f"Company: {intake.data.company}")
    # An existing contact's own values are not overwritten; the lead's are kept here.
    lines += [f"{key}: {value}" for key, value in custom.items()]
    if intake.data.message:
        lines.append(intake.data.message)
    return "\n".join(lines)


async def _new_contact(
    session: AsyncSession,
    intake: Intake,
    *,
    owner_id: str,
    email: str | None,
    phone: str | None,
    tags: list[str],
    custom: dict[str, Any],
) -> Contact:
    data = intake.data
    fallback_name = (email.split("@", 1)[0] if email else phone) or "Lead"
    now = utcnow()
    contact = Contact(
        id=str(new_id()),
        first_name=(data.first_name or fallback_name)[:100],
        last_name=data.last_name,
        email=email,
        phone=phone,
        company_id=await _company_id(session, data.company),
        position=None,
        owner_id=owner_id,
        tags=sorted(set(tags)),
        lifecycle_stage="awareness",
        consent_email=False,
        consent_sms=False,
        custom=custom,
        created_at=now,
        updated_at=now,
    )
    session.add(contact)
    await session.flush()
    read = contact_read(contact)
    record(
        session,
        actor_id=intake.actor_id,
        action="create",
        record_type="contact",
        record_id=contact.id,
        before=None,
        after=read,
    )
    await publish_state(session, ContactCreated, read, actor=intake.actor_id or owner_id)
    return contact


async def _note_on_existing(
    session: AsyncSession, intake: Intake, contact: Contact, summary: str
) -> None:
    """The lead on an existing contact's timeline (authored by the caller, or the owner)."""
    now = utcnow()
    activity = Activity(
        id=str(new_id()),
        contact_id=contact.id,
        deal_id=None,
        type="note",
        occurred_at=now,
        summary=summary,
        author_id=intake.actor_id or contact.owner_id,
        private=False,
        created_at=now,
        updated_at=now,
    )
    session.add(activity)
    await session.flush()
    state = activity_read(activity).model_dump(mode="json")
    state["activity_type"] = state.pop("type")
    await add_event(
        session,
        ActivityCreated.model_validate(state),
        subject=activity.id,
        actor=activity.author_id,
    )


async def take_in(db: Database, intake: Intake, *, phone_region: str) -> LeadRead:
    """Record a lead: an existing contact (same e-mail or phone) keeps its owner and gets a
    note on its timeline; otherwise a new contact is owned as the rule says (or by the caller).
    404 for an unknown or inactive rule or form."""
    data = intake.data
    email = data.email.lower() if data.email else None
    phone = to_e164(data.phone, phone_region) if data.phone else None
    title = data.title if isinstance(data, LeadCreate) else None
    async with db.transaction() as session:
        rule = None
        if intake.rule_id or intake.form_key:
            # First statement of the transaction: takes the rule's lock (see assign).
            rule = await assign.lock_rule(session, rule_id=intake.rule_id, form_key=intake.form_key)
            if rule is None:
                what = (
                    f"form {intake.form_key}" if intake.form_key else f"lead rule {intake.rule_id}"
                )
                raise NotFound(f"No active {what}.")
        tags = list(rule.default_tags) if rule else []
        custom: dict[str, Any] = {}
        if isinstance(data, LeadCreate):
            tags += data.tags
            # Checked whether or not the person exists (422 must not reveal who does);
            # a web form cannot carry custom values, so it is not held to required ones.
            custom = await validate_custom(session, "contact", data.custom)
        existing = await _existing_contact(session, email, phone)
        if existing is not None:
            contact, owner_id = existing, existing.owner_id
            summary = _summary(intake, title, custom)
            await _note_on_existing(session, intake, existing, summary)
        else:
            routing = {
                *tags,
                *([data.territory] if isinstance(data, LeadCreate) and data.territory else []),
            }
            if rule is not None:
                owner_id = await assign.choose_owner(session, rule, routing)
            else:
                assert intake.actor_id is not None, "a rule-less lead comes from a caller"
                owner_id = intake.actor_id
            contact = await _new_contact(
                session,
                intake,
                owner_id=owner_id,
                email=email,
                phone=phone,
                tags=tags,
                custom=custom,
            )
        utm = {f: v for f in UTM_FIELDS if (v := getattr(data, f))}
        lead = Lead(
            id=str(new_id()),
            contact_id=contact.id,
            is_new_contact=existing is None,
            owner_id=owner_id,
            status="open",
            source=intake.source,
            rule_id=rule.id if rule else None,
            form_key=intake.form_key,
            pipeline_id=rule.pipeline_id if rule else None,
            title=title,
            message=data.message,
            company_name=data.company,
            amount=str(data.amount)
            if isinstance(data, LeadCreate) and data.amount is not None
            else None,
            currency=data.currency if isinstance(data, LeadCreate) else None,
            utm=utm,
            actor_id=intake.actor_id,
            received_at=utcnow(),
        )
        session.add(lead)
        await session.flush()
        read = to_read(lead)
        event = LeadReceived(
            id=lead.id,
            contact_id=contact.id,
            is_new_contact=lead.is_new_contact,
            owner_id=owner_id,
            source=lead.source,
            form_key=lead.form_key,
            rule_id=lead.rule_id,
            pipeline_id=lead.pipeline_id,
            title=title,
            message=lead.message,
            amount=lead.amount,
            currency=lead.currency,
            received_at=lead.received_at.isoformat(),
            **utm,
        )
        await add_event(session, event, subject=lead.id, actor=intake.actor_id or owner_id)
    return read


async def get_lead(*, db: Database, principal: Principal, lead_id: str) -> LeadRead:
    async with db.session() as session:
        return to_read(await _load(session, principal, lead_id))


async def _load(session: AsyncSession, principal: Principal, lead_id: str) -> Lead:
    lead = (
        await session.scalars(
            select(Lead).where(Lead.id == lead_id, owner_filter(principal, Lead.owner_id))
        )
    ).first()
    if lead is None:
        raise NotFound(f"No lead {lead_id}.")
    return lead


async def list_leads(
    *,
    db: Database,
    principal: Principal,
    limit: int,
    cursor: str | None,
    status: str | None,
    owner_id: str | None,
) -> Page[LeadRead]:
    """The leads whose owner the caller sees, newest first."""
    query = select(Lead).where(owner_filter(principal, Lead.owner_id))
    if status:
        query = query.where(Lead.status == status)
    if owner_id:
        query = query.where(Lead.owner_id == owner_id)
    keys = parse_sort(None, SORTABLE, "-received_at", Lead.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[LeadRead](items=[to_read(r[0]) for r in rows], next_cursor=next_cursor)


async def update_lead(
    *, db: Database, principal: Principal, lead_id: str, data: LeadUpdate
) -> LeadRead:
    """Close (or reopen) a lead: closed leads stop counting for least_open_leads."""
    async with db.transaction() as session:
        lead = await _load(session, principal, lead_id)
        access.ensure_may_write(principal, lead.owner_id)
        lead.status = data.status
        await session.flush()
        return to_read(lead)
