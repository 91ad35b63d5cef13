"""The gateway's settings: admin bootstrap, token signing, login limits, upstream services."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from crm_gateway.ratelimit import Rate
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
    # Request budgets per caller (user, API key, or client IP without a valid
    # token): `<requests>/<period>`, e.g. 600/minute, 20/hour, 5/30s; 0 = off.
    rate_limit_login: str = Field(default="60/minute", alias="CRM_RATE_LIMIT_LOGIN")
    rate_limit_writes: str = Field(default="300/minute", alias="CRM_RATE_LIMIT_WRITES")
    rate_limit_reads: str = Field(default="1200/minute", alias="CRM_RATE_LIMIT_READS")
    rate_limit_exports: str = Field(default="60/hour", alias="CRM_RATE_LIMIT_EXPORTS")
    # Public routes (/public/...), per client IP: links and pages, and lead forms.
    rate_limit_public: str = Field(default="300/minute", alias="CRM_RATE_LIMIT_PUBLIC")
    rate_limit_forms: str = Field(default="10/minute", alias="CRM_RATE_LIMIT_FORMS")
    # How long the answer to a request with an Idempotency-Key is replayed.
    idempotency_ttl_seconds: float = Field(default=86400, gt=0, alias="CRM_IDEMPOTENCY_TTL_SECONDS")
    # Largest request body taken (413 beyond), checked as it arrives.
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1, alias="CRM_MAX_BODY_BYTES")
    # Browser origins allowed to call the API (comma-separated; none by default).
    cors_origins: str = Field(default="", alias="CRM_CORS_ORIGINS")
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
    # Composed views (overviews/): each part's own time limit and list length.
    overview_timeout: float = Field(default=2.0, gt=0, alias="CRM_OVERVIEW_TIMEOUT")
    overview_limit: int = Field(default=10, ge=1, le=100, alias="CRM_OVERVIEW_LIMIT")
    # Circuit breaker per service: open after this many failures in a row, and
    # let one trial call through after the cool-down.
    breaker_failures: int = Field(default=5, ge=1, alias="CRM_BREAKER_FAILURES")
    breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, alias="CRM_BREAKER_COOLDOWN_SECONDS"
    )

    # Roles that must use two-factor authentication (comma-separated, e.g. `admin`):
    # until they set it up, their tokens reach only /me/2fa and /auth.
    totp_required_roles: str = Field(default="", alias="CRM_TOTP_REQUIRED_ROLES")
    totp_issuer: str = Field(default="CRM", alias="CRM_TOTP_ISSUER")
    # Live stream (stream/): heartbeat period, how many stored events per stream a
    # resuming client may be replayed, and how far a connection may fall behind.
    stream_heartbeat_seconds: float = Field(
        default=15.0, gt=0, alias="CRM_STREAM_HEARTBEAT_SECONDS"
    )
    stream_replay_limit: int = Field(default=2000, ge=0, alias="CRM_STREAM_REPLAY_LIMIT")
    stream_queue_size: int = Field(default=10_000, ge=1, alias="CRM_STREAM_QUEUE_SIZE")

    @field_validator(
        "rate_limit_login",
        "rate_limit_writes",
        "rate_limit_reads",
        "rate_limit_exports",
        "rate_limit_public",
        "rate_limit_forms",
    )
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        Rate.parse(value)
        return value

    def rate_limits(self) -> dict[str, Rate]:
        """Each budget's rate, by budget name."""
        return {
            "login": Rate.parse(self.rate_limit_login),
            "writes": Rate.parse(self.rate_limit_writes),
            "reads": Rate.parse(self.rate_limit_reads),
            "exports": Rate.parse(self.rate_limit_exports),
            "public": Rate.parse(self.rate_limit_public),
            "forms": Rate.parse(self.rate_limit_forms),
        }

    def totp_roles(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.totp_required_roles.split(",") if r.strip())

    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    def upstream_urls(self) -> dict[str, str]:
        """Base URL of each service the gateway forwards to, by service name."""
        return {
            "contacts": self.contacts_url.rstrip("/"),
            "deals": self.deals_url.rstrip("/"),
            "campaigns": self.campaigns_url.rstrip("/"),
            "notifications": self.notifications_url.rstrip("/"),
            "reports": self.reports_url.rstrip("/"),
        }
