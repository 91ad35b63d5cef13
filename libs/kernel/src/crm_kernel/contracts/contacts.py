"""Events published by the contacts service."""

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


class ContactCreated(ContactState):
    type = "crm.contacts.contact.created"


CONTRACTS = (ContactCreated,)
