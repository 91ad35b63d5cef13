"""Service settings: database URL and port resolution from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from crm_kernel.settings import DEFAULT_PORTS, ServiceSettings

_ENV = (
    "SERVICE_NAME",
    "DATABASE_URL",
    "CONTACTS_DATABASE_URL",
    "DEALS_DATABASE_URL",
    "PORT",
    "CONTACTS_PORT",
    "DEALS_PORT",
)


class ContactsSettings(ServiceSettings):
    service_name: ClassVar[str] = "contacts"


class DealsSettings(ServiceSettings):
    service_name: ClassVar[str] = "deals"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_dir: Path) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_dir))


def test_unset_database_url_is_a_sqlite_file_per_service_under_data_dir(tmp_dir: Path) -> None:
    assert ContactsSettings().database_url == f"sqlite+aiosqlite:///{tmp_dir}/contacts.db"
    assert DealsSettings().database_url == f"sqlite+aiosqlite:///{tmp_dir}/deals.db"


def test_database_url_applies_when_no_service_specific_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://db/shared")
    assert ContactsSettings().database_url == "postgresql+asyncpg://db/shared"


def test_service_database_url_wins_over_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://db/shared")
    monkeypatch.setenv("CONTACTS_DATABASE_URL", "postgresql+asyncpg://db/contacts")
    assert ContactsSettings().database_url == "postgresql+asyncpg://db/contacts"
    # Another service's variable is not this service's business.
    assert DealsSettings().database_url == "postgresql+asyncpg://db/shared"


def test_each_service_has_its_default_port() -> None:
    assert ContactsSettings().port == DEFAULT_PORTS["contacts"] == 8001
    assert DealsSettings().port == DEFAULT_PORTS["deals"] == 8002

    class BillingSettings(ServiceSettings):
        service_name: ClassVar[str] = "billing"

    assert BillingSettings().port == 8080


def test_service_port_wins_over_port_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    assert ContactsSettings().port == 9000
    monkeypatch.setenv("CONTACTS_PORT", "9101")
    assert ContactsSettings().port == 9101
    assert DealsSettings().port == 9000


def test_kubernetes_service_link_port_variable_is_not_taken_for_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Service named "contacts" makes Kubernetes set CONTACTS_PORT=tcp://host:port in pods.
    monkeypatch.setenv("CONTACTS_PORT", "tcp://10.0.0.7:8001")
    assert ContactsSettings().port == 8001


def test_service_name_is_the_subclass_default_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_dir: Path
) -> None:
    monkeypatch.setenv("SERVICE_NAME", "billing")
    settings = ContactsSettings()
    assert settings.service_name == "contacts"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_dir}/contacts.db"
