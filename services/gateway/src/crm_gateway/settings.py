"""The gateway's settings: admin bootstrap, token signing, login limits, upstream services."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from crm_kernel.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Environment of the gateway; everything shared comes from `ServiceSettings`."""

    service_name: ClassVar[str] = "gateway"

    # Bootstrap: an admin is created at start-up only when a password is given.
    admin_email: str = Field(default="admin@example.com", alias="CRM_ADMIN_EMAIL")
    admin_password: str = Field(default="", alias="CRM_ADMIN_PASSWORD")

    # RS256 when a private key (PEM) is set; otherwise HS256 with CRM_JWT_SECRET.
    jwt_private_key: str = Field(default="", alias="CRM_JWT_PRIVATE_KEY")
    access_token_minutes: float = Field(default=15, gt=0, alias="CRM_ACCESS_TOKEN_MINUTES")
    refresh_token_days: float = Field(default=30, gt=0, alias="CRM_REFRESH_TOKEN_DAYS")
    # How long a replica trusts its last look at a session (revocation reaches
    # every replica within this time; the replica that revoked sees it at once).
    session_check_seconds: float = Field(default=2.0, ge=0, alias="CRM_SESSION_CHECK_SECONDS")

    # Failed logins counted in a fixed window, per account and per client IP.
    login_max_failures_per_account: int = Field(
        default=5, ge=1, alias="CRM_LOGIN_MAX_FAILURES_PER_ACCOUNT"
    )
    login_max_failures_per_ip: int = Field(default=20, ge=1, alias="CRM_LOGIN_MAX_FAILURES_PER_IP")
    login_window_seconds: int = Field(default=900, ge=1, alias="CRM_LOGIN_WINDOW_SECONDS")
    # Prefix of every Redis key the gateway writes (lets deployments share a Redis).
    redis_prefix: str = Field(default="crm:gateway:", alias="CRM_REDIS_PREFIX")

    contacts_url: str = Field(default="http://127.0.0.1:8001", alias="CONTACTS_URL")
    deals_url: str = Field(default="http://127.0.0.1:8002", alias="DEALS_URL")
    campaigns_url: str = Field(default="http://127.0.0.1:8003", alias="CAMPAIGNS_URL")
    notifications_url: str = Field(default="http://127.0.0.1:8004", alias="NOTIFICATIONS_URL")
    reports_url: str = Field(default="http://127.0.0.1:8005", alias="REPORTS_URL")
    upstream_timeout: float = Field(default=10.0, gt=0, alias="UPSTREAM_TIMEOUT")
    # Connections kept open to all upstream services together.
    upstream_pool_size: int = Field(default=256, ge=1, alias="UPSTREAM_POOL_SIZE")

    def upstream_urls(self) -> dict[str, str]:
        """Base URL of each service the gateway forwards to, by service name."""
        return {
            "contacts": self.contacts_url.rstrip("/"),
            "deals": self.deals_url.rstrip("/"),
            "campaigns": self.campaigns_url.rstrip("/"),
            "notifications": self.notifications_url.rstrip("/"),
            "reports": self.reports_url.rstrip("/"),
        }
