"""Settings of the reports service."""

from __future__ import annotations

from typing import ClassVar

from crm_kernel.settings import ServiceSettings


class ReportsSettings(ServiceSettings):
    service_name: ClassVar[str] = "reports"
