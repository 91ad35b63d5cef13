"""Settings of the contacts service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from crm_kernel.settings import ServiceSettings


class ContactsSettings(ServiceSettings):
    service_name: ClassVar[str] = "contacts"
    # Region assumed for phone numbers typed without a country code.
    phone_region: str = Field(default="RU", alias="CRM_PHONE_REGION")
    # Seconds between the task scheduler's scans for due reminders and overdue tasks.
    task_scheduler_interval: float = Field(default=1.0, gt=0, alias="CRM_TASK_SCHEDULER_INTERVAL")
