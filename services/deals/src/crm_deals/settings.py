"""Settings of the deals service."""

from __future__ import annotations

from typing import ClassVar

from crm_kernel.settings import ServiceSettings


class DealsSettings(ServiceSettings):
    service_name: ClassVar[str] = "deals"
