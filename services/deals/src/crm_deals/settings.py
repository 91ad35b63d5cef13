"""Settings of the deals service."""

from __future__ import annotations

from crm_kernel.settings import ServiceSettings


class DealsSettings(ServiceSettings):
    service_name: str = "deals"
