"""Campaign API shapes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Status = Literal["draft", "scheduled", "sending", "paused", "sent", "cancelled"]


class VariantBody(BaseModel):
    """A variant overrides the campaign template's subject and/or body, or names another template."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    template_id: str | None = None
    subject: str | None = Field(default=None, max_length=500)
    body_html: str | None = Field(default=None, max_length=200_000)
    body_text: str | None = Field(default=None, max_length=200_000)


class CampaignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    channel: Literal["email", "sms"] = "email"
    template_id: str | None = None
    # `segment_id` is the SPEC's single-segment shorthand for `segment_ids`.
    segment_id: str | None = None
    segment_ids: list[str] = Field(default_factory=list, max_length=50)
    exclude_segment_ids: list[str] = Field(default_factory=list, max_length=50)
    rfm_groups: list[str] = Field(default_factory=list, max_length=20)
    cost: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    attribution_days: int = Field(default=30, ge=1, le=365)
    rate_per_second: int | None = Field(default=None, ge=1, le=10_000)
    track_opens: bool = True
    track_clicks: bool = True
    variants: list[VariantBody] = Field(default_factory=list, max_length=10)
    ab_test_percent: int = Field(default=20, ge=1, le=100)
    ab_metric: Literal["open", "click"] = "open"
    ab_window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    scheduled_at: AwareDatetime | None = None
    # An invitation campaign: its templates may use `event.*`, each recipient sent is invited.
    marketing_event_id: str | None = None

    @field_validator("rfm_groups")
    @classmethod
    def _groups(cls, groups: list[str]) -> list[str]:
        if any(not g or len(g) > 40 for g in groups):
            raise ValueError("an RFM group name has 1 to 40 characters")
        return groups

    @model_validator(mode="after")
    def _consistent(self) -> CampaignBody:
        if self.segment_id and self.segment_id not in self.segment_ids:
            self.segment_ids = [self.segment_id, *self.segment_ids]
        if self.cost is not None and not self.currency:
            raise ValueError("currency: a cost needs its currency")
        if len(self.variants) == 1:
            raise ValueError("variants: an A/B test needs two or more variants (or none)")
        if not self.template_id and (
            not self.variants or any(not v.template_id for v in self.variants)
        ):
            raise ValueError(
                "template_id: a template (or a template for every variant) is required"
            )
        return self


class CampaignCreate(CampaignBody):
    pass


class CampaignUpdate(CampaignBody):
    version: int | None = None


class ScheduleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheduled_at: AwareDatetime


class VariantRead(BaseModel):
    id: str
    name: str
    template_id: str | None
    subject: str | None
    body_html: str | None
    body_text: str | None


class Counters(BaseModel):
    audience: int = 0
    held: int = 0
    pending: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    bounced: int = 0
    suppressed: int = 0
    cancelled: int = 0


class CampaignRead(BaseModel):
    id: str
    name: str
    channel: str
    template_id: str | None
    segment_id: str | None
    segment_ids: list[str]
    exclude_segment_ids: list[str]
    rfm_groups: list[str]
    status: Status
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cost: Decimal | None
    currency: str | None
    attribution_days: int
    rate_per_second: int
    track_opens: bool
    track_clicks: bool
    marketing_event_id: str | None
    variants: list[VariantRead]
    ab_test_percent: int
    ab_metric: str
    ab_window_minutes: int
    ab_phase: str
    ab_decide_at: datetime | None
    ab_winner_variant_id: str | None
    progress: Counters
    created_by: str
    version: int
    created_at: datetime
    updated_at: datetime
