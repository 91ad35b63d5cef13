"""Service settings read from the environment (pydantic-settings)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {
    "gateway": 8000,
    "contacts": 8001,
    "deals": 8002,
    "campaigns": 8003,
    "notifications": 8004,
    "reports": 8005,
}


class ServiceSettings(BaseSettings):
    """Settings every service shares; a service subclasses it for its own.

    `DATABASE_URL` names this service's database in a deployment where each
    service has its own environment. `<SERVICE>_DATABASE_URL` wins over it, so
    one environment (a developer's shell, `make run`) can point every service
    at its own database. Unset: a SQLite file per service under `CRM_DATA_DIR`.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    # Fixed per service class, never from the environment (it names files and consumers).
    service_name: ClassVar[str] = "kernel"
    data_dir: Path = Field(default=Path(".data"), alias="CRM_DATA_DIR")
    database_url: str = Field(default="", alias="DATABASE_URL")
    host: str = Field(default="127.0.0.1", alias="HOST")
    port: int = Field(default=0, alias="PORT")
    nats_url: str = Field(default="nats://127.0.0.1:4222", alias="NATS_URL")
    nats_replicas: int = Field(default=1, alias="CRM_NATS_REPLICAS")
    # Days of history an event stream keeps for replay (0: forever).
    event_retention_days: int = Field(default=0, alias="CRM_EVENT_RETENTION_DAYS")
    redis_url: str = Field(default="", alias="REDIS_URL")
    public_url: str = Field(default="http://127.0.0.1:8000", alias="CRM_PUBLIC_URL")
    jwt_secret: str = Field(default="", alias="CRM_JWT_SECRET")
    # Signs public links (crm_kernel.signing); unset: derived from the JWT secret.
    signing_secret: str = Field(default="", alias="CRM_SIGNING_SECRET")
    jwt_public_key: str = Field(default="", alias="CRM_JWT_PUBLIC_KEY")
    jwt_issuer: str = Field(default="crm-gateway", alias="CRM_JWT_ISSUER")
    jwt_audience: str = Field(default="crm", alias="CRM_JWT_AUDIENCE")
    otlp_endpoint: str = Field(default="", alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    # Off on replicas that should not relay (the relay can run anywhere).
    outbox_relay: bool = Field(default=True, alias="CRM_OUTBOX_RELAY")
    # Deliveries of one message before it goes to the dead-letter stream.
    max_deliveries: int = Field(default=5, alias="CRM_MAX_DELIVERIES")
    log_level: str = Field(default="info", alias="LOG_LEVEL")
    # uvicorn worker processes in one replica (scale out with replicas first).
    workers: int = Field(default=1, alias="WORKERS")

    def signing_key(self) -> bytes:
        """The key for public-link tokens: its own secret, or one derived from the JWT secret."""
        if self.signing_secret:
            return self.signing_secret.encode()
        if not self.jwt_secret:
            raise ValueError("CRM_SIGNING_SECRET (or CRM_JWT_SECRET) must be set")
        return hashlib.sha256(b"crm-signing:" + self.jwt_secret.encode()).digest()

    @model_validator(mode="after")
    def _service_defaults(self) -> ServiceSettings:
        prefix = self.service_name.upper()
        own_url = os.environ.get(f"{prefix}_DATABASE_URL")
        if own_url:
            self.database_url = own_url
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / self.service_name}.db"
        own_port = os.environ.get(f"{prefix}_PORT", "")
        # Kubernetes service links set e.g. CONTACTS_PORT=tcp://10.0.0.1:8001: not ours.
        if own_port.isdigit():
            self.port = int(own_port)
        if not self.port:
            self.port = DEFAULT_PORTS.get(self.service_name, 8080)
        return self
