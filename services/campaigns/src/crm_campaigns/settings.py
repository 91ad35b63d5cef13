"""Settings of the campaigns service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from crm_kernel.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    service_name: ClassVar[str] = "campaigns"

    # Rows one sender batch claims at most (also bounded by the campaign's rate).
    send_batch_size: int = Field(default=500, alias="CAMPAIGNS_SEND_BATCH_SIZE")
    # How often the sender and the scheduler look for work when nothing woke them.
    send_poll_seconds: float = Field(default=0.5, alias="CAMPAIGNS_SEND_POLL_SECONDS")
    scheduler_poll_seconds: float = Field(default=1.0, alias="CAMPAIGNS_SCHEDULER_POLL_SECONDS")
    # A campaign's default rate when it names none (messages per second).
    default_rate_per_second: int = Field(default=100, alias="CAMPAIGNS_DEFAULT_RATE")
    # A queued row with no delivery report after this long is handed over again (same key),
    # at most this many times, then failed: a lost command cannot keep a campaign sending.
    requeue_after_seconds: float = Field(default=900, alias="CAMPAIGNS_REQUEUE_AFTER_SECONDS")
    requeue_attempts: int = Field(default=3, ge=0, alias="CAMPAIGNS_REQUEUE_ATTEMPTS")
