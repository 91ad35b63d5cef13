"""Settings of the notifications service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from crm_kernel.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifications"
    # Unset: e-mail goes to the local sink, files under CRM_DATA_DIR/mail.
    smtp_url: str = Field(default="", alias="SMTP_URL")
    # Unset: SMS goes to the local sink, files under CRM_DATA_DIR/sms.
    sms_url: str = Field(default="", alias="SMS_URL")
    mail_from: str = Field(default="CRM <crm@localhost>", alias="CRM_MAIL_FROM")
