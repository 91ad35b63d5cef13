"""Settings of the reports service."""

from __future__ import annotations

from crm_kernel.settings import ServiceSettings


class ReportsSettings(ServiceSettings):
    service_name: str = "reports"
