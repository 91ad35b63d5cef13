"""Overview report shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class MoneyTotal(BaseModel):
    """A sum in one currency (decimal string); `weighted` by each stage's win probability."""

    currency: str
    amount: str
    weighted: str | None = None


class OverviewRead(BaseModel):
    """Headline figures over the records the caller may see; `*_created`/won within the period."""

    contacts: int
    contacts_created: int
    open_deals: int
    open_pipeline: list[MoneyTotal]
    deals_created: int
    deals_won: int
    won_amount: list[MoneyTotal]
    # Leads received in the period (by their owner), tasks open past due now (by assignee),
    # campaigns started in the period that are sending or sent (everyone's: marketing's work).
    leads_received: int = 0
    tasks_overdue: int = 0
    campaigns_sent: int = 0
    period_from: datetime | None
    period_to: datetime | None
