"""Settings of the campaigns service."""

from __future__ import annotations

from crm_kernel.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    service_name: str = "campaigns"
