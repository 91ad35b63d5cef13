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


class RequestState(IntegrationEvent):
    """The whole current state of a client request.

    `resolution_seconds` is set while it is resolved (from `opened_at` to
    `resolved_at`); reports average it for the resolution-time KPI.
    """

    id: str
    contact_id: str
    subject: str
    description: str | None = None
    status: str  # open, in_progress, resolved
    opened_at: str
    resolved_at: str | None = None
    resolution_seconds: int | None = None
    assignee_id: str
    version: int
    created_at: str
    updated_at: str


class RequestOpened(RequestState):
    type = "crm.contacts.request.opened"


class RequestUpdated(RequestState):
    """Any change but resolving and reopening (fields, assignee, open -> in_progress)."""

    type = "crm.contacts.request.updated"


class RequestResolved(RequestState):
    type = "crm.contacts.request.resolved"


class RequestReopened(RequestState):
    type = "crm.contacts.request.reopened"


class TaskState(IntegrationEvent):
    """The whole current state of a task (on a contact, a deal, or both).

    `remind_before_minutes` None means no due-soon reminder. `due_soon` and
    `overdue` are emitted by the service's scheduler at most once per due time.
    """

    id: str
    title: str
    due_at: str
    assignee_id: str
    contact_id: str | None = None
    deal_id: str | None = None
    status: str  # open, done
    remind_before_minutes: int | None = None
    completed_at: str | None = None
    version: int
    created_at: str
    updated_at: str
    deleted_at: str | None = None


class TaskCreated(TaskState):
    type = "crm.contacts.task.created"


class TaskUpdated(TaskState):
    """Any change but completing (fields, assignee, done -> open)."""

    type = "crm.contacts.task.updated"


class TaskCompleted(TaskState):
    type = "crm.contacts.task.completed"


class TaskDeleted(TaskState):
    type = "crm.contacts.task.deleted"


class TaskDueSoon(TaskState):
    """An open task reached `due_at - remind_before_minutes` (once per due time)."""

    type = "crm.contacts.task.due_soon"


class TaskOverdue(TaskState):
    """An open task reached `due_at` (once per due time)."""

    type = "crm.contacts.task.overdue"


class ContactMerged(ContactState):
    """`merged_id` was merged into this contact (the survivor, whose state this is).

    Other services re-point their references from `merged_id` to `id` and treat
    `merged_id` as gone.
    """

    type = "crm.contacts.contact.merged"
    merged_id: str


class ContactErased(IntegrationEvent):
    """A privacy request erased this person: every service removes its personal data.

    Carries the addresses being erased (and nothing else personal) so a messaging
    service can put them on its suppression list before forgetting them.
    """

    type = "crm.contacts.contact.erased"
    id: str
    erased_at: str
    actor_id: str | None = None
    email: str | None = None
    phone: str | None = None


class LeadReceived(IntegrationEvent):
    """A lead came in (API, web form, import) and was given an owner.

    `contact_id` is the new or the existing (de-duplicated) contact. The deals
    service opens a deal in `pipeline_id` (None: the default pipeline);
    notifications tells the owner.
    """

    type = "crm.contacts.lead.received"
    id: str
    contact_id: str
    is_new_contact: bool
    owner_id: str
    source: str  # api, web_form, import, manual ...
    form_key: str | None = None
    rule_id: str | None = None
    pipeline_id: str | None = None
    title: str | None = None
    message: str | None = None
    # Expected deal size, a decimal string with an ISO 4217 currency, if the form asked.
    amount: str | None = None
    currency: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    received_at: str


class OwnerReassigned(IntegrationEvent):
    """A bulk reassignment finished (offboarding or a head of sales' bulk move).

    One event per job, for notifications to tell the new owner; each record also
    gets its own `owner_changed` event.
    """

    type = "crm.contacts.owner.reassigned"
    job_id: str
    previous_owner_id: str
    owner_id: str
    contacts: int
    companies: int
    reason: str  # offboarding, bulk
    actor_id: str | None = None
    at: str


class SegmentState(IntegrationEvent):
    """A segment's whole definition.

    `kind` "dynamic": members are the contacts matching `filter` (the kernel's
    filter language, `crm_kernel.filters`), evaluated by each service on its own
    replica. `kind` "static": members are listed by `SegmentMembersChanged`.
    """

    id: str
    name: str
    kind: str  # static, dynamic
    filter: dict[str, object] | None = None
    owner_id: str
    version: int
    created_at: str
    updated_at: str
    deleted_at: str | None = None


class SegmentCreated(SegmentState):
    type = "crm.contacts.segment.created"


class SegmentUpdated(SegmentState):
    type = "crm.contacts.segment.updated"


class SegmentDeleted(SegmentState):
    type = "crm.contacts.segment.deleted"


class SegmentMembersChanged(IntegrationEvent):
    """Static segment members added or removed (at most 1,000 ids per event)."""

    type = "crm.contacts.segment.members_changed"
    segment_id: str
    added: list[str] = []
    removed: list[str] = []
    at: str


class BulkReadSuspected(IntegrationEvent):
    """A user read more distinct contacts in the sliding hour than allowed (once per window)."""

    type = "crm.contacts.security.bulk_read_suspected"
    user_id: str
    distinct_contacts: int
    threshold: int
    window_started_at: str
    at: str


class ImportFinished(IntegrationEvent):
    """A CSV import job ran to its end (subject: the job). Rows that failed are `error_count`."""

    type = "crm.contacts.import.finished"
    job_id: str
    actor_id: str
    total: int
    created: int
    updated: int
    skipped: int
    error_count: int
    finished_at: str


class CreateTask(IntegrationEvent):
    """Command: create a task (pipeline automation); `key` makes a repeat a no-op."""

    type = "crm.contacts.task.create"
    is_command = True
    key: str
    title: str
    due_at: str
    assignee_id: str
    contact_id: str | None = None
    deal_id: str | None = None
    remind_before_minutes: int | None = None


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
    RequestOpened,
    RequestUpdated,
    RequestResolved,
    RequestReopened,
    TaskCreated,
    TaskUpdated,
    TaskCompleted,
    TaskDeleted,
    TaskDueSoon,
    TaskOverdue,
    ContactMerged,
    ContactErased,
    LeadReceived,
    OwnerReassigned,
    SegmentCreated,
    SegmentUpdated,
    SegmentDeleted,
    SegmentMembersChanged,
    BulkReadSuspected,
    ImportFinished,
    CreateTask,
)
