"""Events published by the contacts service.

Every contact and company event carries the record's whole current state with
its `version`, so a consumer keeps a read model with `db.upsert_if_newer` and
needs no ordering across events. Fields are only ever added here.
"""

from __future__ import annotations

from pydantic import BaseModel

from crm_kernel.events import IntegrationEvent


class Consent(BaseModel):
    email: bool = False
    sms: bool = False


class ContactState(IntegrationEvent):
    """The whole current state of a contact, as the API shows it."""

    id: str
    first_name: str
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_id: str | None = None
    position: str | None = None
    owner_id: str
    tags: list[str] = []
    lifecycle_stage: str | None = None
    consent: Consent = Consent()
    custom: dict[str, object] = {}
    version: int
    created_at: str
    updated_at: str
    # Set while the contact is in the trash (soft-deleted); None otherwise.
    deleted_at: str | None = None


class ContactCreated(ContactState):
    type = "crm.contacts.contact.created"


class ContactUpdated(ContactState):
    type = "crm.contacts.contact.updated"


class ContactOwnerChanged(ContactState):
    """The contact has a new owner; `previous_owner_id` is who had it."""

    type = "crm.contacts.contact.owner_changed"
    previous_owner_id: str


class ContactDeleted(ContactState):
    """Moved to the trash (restorable); other services hide it, they do not erase it."""

    type = "crm.contacts.contact.deleted"


class ContactRestored(ContactState):
    type = "crm.contacts.contact.restored"


class ConsentChanged(IntegrationEvent):
    """One channel's marketing consent was given or withdrawn (one ledger entry).

    Carries the contact's e-mail and phone so a messaging service can suppress
    the address without asking; `granted` False means: never message on it.
    """

    type = "crm.contacts.consent.changed"
    contact_id: str
    channel: str  # "email" or "sms"
    granted: bool
    source: str
    actor_id: str | None = None
    changed_at: str
    email: str | None = None
    phone: str | None = None


class CompanyState(IntegrationEvent):
    """The whole current state of a company, as the API shows it."""

    id: str
    name: str
    domain: str | None = None
    phone: str | None = None
    owner_id: str
    tags: list[str] = []
    custom: dict[str, object] = {}
    version: int
    created_at: str
    updated_at: str
    deleted_at: str | None = None


class CompanyCreated(CompanyState):
    type = "crm.contacts.company.created"


class CompanyUpdated(CompanyState):
    type = "crm.contacts.company.updated"


class CompanyOwnerChanged(CompanyState):
    type = "crm.contacts.company.owner_changed"
    previous_owner_id: str


class CompanyDeleted(CompanyState):
    type = "crm.contacts.company.deleted"


class CompanyRestored(CompanyState):
    type = "crm.contacts.company.restored"


class ActivityState(IntegrationEvent):
    """The whole current state of a manual activity on a contact's timeline.

    `activity_type` is the API's `type` (call, meeting, email, note, sms): the
    name `type` is taken by the event's subject. A `private` note must not be
    shown to marketers by whoever keeps it.
    """

    id: str
    contact_id: str
    deal_id: str | None = None
    activity_type: str
    occurred_at: str
    summary: str
    author_id: str
    private: bool = False
    version: int
    created_at: str
    updated_at: str
    deleted_at: str | None = None


class ActivityCreated(ActivityState):
    type = "crm.contacts.activity.created"


class ActivityUpdated(ActivityState):
    type = "crm.contacts.activity.updated"


class ActivityDeleted(ActivityState):
    type = "crm.contacts.activity.deleted"


CONTRACTS = (
    ContactCreated,
    ContactUpdated,
    ContactOwnerChanged,
    ContactDeleted,
    ContactRestored,
    ConsentChanged,
    CompanyCreated,
    CompanyUpdated,
    CompanyOwnerChanged,
    CompanyDeleted,
    CompanyRestored,
    ActivityCreated,
    ActivityUpdated,
    ActivityDeleted,
)
