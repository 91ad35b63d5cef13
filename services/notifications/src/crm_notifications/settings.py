"""Settings of the notifications service."""

from __future__ import annotations

import hashlib
import hmac
from datetime import time
from decimal import Decimal
from typing import ClassVar

from pydantic import Field

from crm_kernel.settings import ServiceSettings
from crm_notifications.preferences.quiet import parse_clock


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
    # SMTP connections kept open per provider (per process), shared by both pools.
    smtp_pool_size: int = Field(default=20, ge=1, alias="CRM_SMTP_POOL_SIZE")
    # Messages a second per provider (per process); 0: no cap.
    smtp_rate_per_second: float = Field(default=0.0, alias="CRM_SMTP_RATE_PER_SECOND")
    sms_rate_per_second: float = Field(default=0.0, alias="CRM_SMS_RATE_PER_SECOND")
    # E-mails per second to one recipient domain (per dispatcher process); 0: no limit.
    email_domain_rate_per_second: int = Field(default=0, alias="CRM_EMAIL_DOMAIN_RATE_PER_SECOND")
    # VERP: the envelope sender is bounce+<notification id>@<this domain>, so a bounce names
    # its message. Unset: the address of CRM_MAIL_FROM.
    bounce_domain: str = Field(default="", alias="CRM_BOUNCE_DOMAIN")
    # DKIM signing (RSA or Ed25519 PEM key), on when selector, domain and a key are set.
    dkim_selector: str = Field(default="", alias="DKIM_SELECTOR")
    dkim_domain: str = Field(default="", alias="DKIM_DOMAIN")
    dkim_private_key: str = Field(default="", alias="DKIM_PRIVATE_KEY")
    dkim_private_key_file: str = Field(default="", alias="DKIM_PRIVATE_KEY_FILE")
    # The secret path segment of the public callback URLs; unset: derived from the signing key.
    sms_callback_secret: str = Field(default="", alias="CRM_SMS_CALLBACK_SECRET")
    email_callback_secret: str = Field(default="", alias="CRM_EMAIL_CALLBACK_SECRET")
    # Webhook targets on loopback/private/link-local addresses are refused unless this is on.
    webhooks_allow_private: bool = Field(default=False, alias="CRM_WEBHOOKS_ALLOW_PRIVATE")
    webhook_max_attempts: int = Field(default=8, alias="CRM_WEBHOOK_MAX_ATTEMPTS")
    webhook_retry_base_seconds: float = Field(default=10.0, alias="CRM_WEBHOOK_RETRY_BASE_SECONDS")
    webhook_timeout_seconds: float = Field(default=10.0, alias="CRM_WEBHOOK_TIMEOUT_SECONDS")
    webhook_concurrency: int = Field(default=10, alias="CRM_WEBHOOK_CONCURRENCY")
    # Finished webhook deliveries (and their attempts) last tried longer ago are deleted;
    # 0: the delivery log is kept forever.
    webhook_log_retention_days: float = Field(
        default=30.0, ge=0, alias="CRM_WEBHOOK_LOG_RETENTION_DAYS"
    )

    # Default SMS quiet hours in the recipient's local time, "21:00-09:00"; empty: none.
    # A contact's own preference wins; "transactional" and "critical" SMS are never held.
    sms_quiet_hours: str = Field(default="", alias="CRM_SMS_QUIET_HOURS")

    def quiet_hours(self) -> tuple[time, time] | None:
        if not self.sms_quiet_hours:
            return None
        start, _, end = self.sms_quiet_hours.partition("-")
        return parse_clock(start), parse_clock(end)

    def callback_secret(self, kind: str) -> str:
        """The secret in the public callback path for `kind` ("sms" or "email")."""
        configured = self.sms_callback_secret if kind == "sms" else self.email_callback_secret
        if configured:
            return configured
        key = self.signing_key()
        return hmac.new(
            key, f"notifications.callbacks.{kind}".encode(), hashlib.sha256
        ).hexdigest()[:32]

    def sms_callback_url(self, provider: str) -> str:
        base = self.public_url.rstrip("/")
        return f"{base}/public/callbacks/sms/{provider}/{self.callback_secret('sms')}"

    def dkim_key_pem(self) -> str:
        if self.dkim_private_key:
            return self.dkim_private_key
        if self.dkim_private_key_file:
            with open(self.dkim_private_key_file) as handle:
                return handle.read()
        return ""
