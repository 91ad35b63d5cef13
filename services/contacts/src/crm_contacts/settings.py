"""Settings of the contacts service."""

from __future__ import annotations

from crm_kernel.settings import ServiceSettings
from pydantic import Field


class ContactsSettings(ServiceSettings):
    service_name: str = "contacts"
    # Region assumed for phone numbers typed without a country code.
    phone_region: str = Field(default="RU", alias="CRM_PHONE_REGION")
