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
    # Roles holding the permission `contacts.export` (comma-separated; admins always do).
    export_roles: str = Field(default="admin", alias="CRM_CONTACTS_EXPORT_ROLES")
    # Hours an export's CSV is kept for download; then it is deleted (the record stays, 410).
    export_retention_hours: float = Field(
        default=24, gt=0, alias="CRM_CONTACTS_EXPORT_RETENTION_HOURS"
    )
    # Read metering: distinct contacts one user may read per sliding window, by
    # role (0: no limit), above which reads answer 429 and an alert is emitted.
    read_window_seconds: int = Field(default=3600, gt=0, alias="CRM_READ_WINDOW_SECONDS")
    read_limit_sales_rep: int = Field(default=1000, ge=0, alias="CRM_READ_LIMIT_SALES_REP")
    read_limit_head_of_sales: int = Field(default=5000, ge=0, alias="CRM_READ_LIMIT_HEAD_OF_SALES")
    read_limit_marketer: int = Field(default=20000, ge=0, alias="CRM_READ_LIMIT_MARKETER")
    read_limit_admin: int = Field(default=0, ge=0, alias="CRM_READ_LIMIT_ADMIN")
    # How long "who viewed this client" remembers a view when metering runs on Redis.
    read_views_retention_days: int = Field(default=90, gt=0, alias="CRM_READ_VIEWS_RETENTION_DAYS")
