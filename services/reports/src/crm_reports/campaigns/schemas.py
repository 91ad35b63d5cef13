"""Campaigns report shape."""

from __future__ import annotations

from pydantic import BaseModel

from crm_reports.overview.schemas import MoneyTotal


class Figures(BaseModel):
    """What one campaign (or one of its variants) got: message facts and attributed deals."""

    audience: int
    sent: int
    delivered: int
    failed: int
    bounced: int
    complained: int
    # Unique recipients who opened / clicked (first open or click each), and all opens.
    opened: int
    opens_total: int
    clicked: int
    unsubscribed: int
    # Unique clickers / delivered (sent when nothing reported delivery).
    response_rate: float | None
    deals_created: int
    deals_won: int
    revenue: list[MoneyTotal]


class VariantRow(Figures):
    variant_id: str | None
    name: str | None


class CampaignRow(Figures):
    campaign_id: str
    name: str
    status: str
    started_at: str | None
    cost: MoneyTotal | None
    # (revenue in the cost's currency - cost) / cost.
    roi: float | None
    variants: list[VariantRow]


class CampaignsRead(BaseModel):
    campaigns: list[CampaignRow]
