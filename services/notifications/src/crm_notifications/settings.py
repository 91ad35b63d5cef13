"""Settings of the notifications service."""

from __future__ import annotations

from decimal import Decimal
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
    # Estimated price of one SMS segment, shown on each SMS notification.
    sms_price_per_segment: Decimal = Field(default=Decimal("0"), alias="CRM_SMS_PRICE_PER_SEGMENT")
    # Provider calls in flight at once, per pool (transactional and bulk have one each).
    transactional_concurrency: int = Field(default=20, alias="CRM_NOTIFY_CONCURRENCY")
    bulk_concurrency: int = Field(default=20, alias="CRM_NOTIFY_BULK_CONCURRENCY")
    max_attempts: int = Field(default=6, alias="CRM_NOTIFY_MAX_ATTEMPTS")
    retry_base_seconds: float = Field(default=2.0, alias="CRM_NOTIFY_RETRY_BASE_SECONDS")
    # How long a claimed message may stay `sending` before it counts as lost with its
    # worker; longer than any provider call (SMTP timeout 30 s) so a slow send is not repeated.
    lease_seconds: float = Field(default=120.0, alias="CRM_NOTIFY_LEASE_SECONDS")
