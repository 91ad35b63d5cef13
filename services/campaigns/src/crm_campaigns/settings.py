"""Settings of the campaigns service."""

from __future__ import annotations

from typing import ClassVar

from crm_kernel.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    service_name: ClassVar[str] = "campaigns"
