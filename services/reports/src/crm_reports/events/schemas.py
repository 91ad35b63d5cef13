"""Marketing events report shape."""

from __future__ import annotations

from pydantic import BaseModel

from crm_reports.overview.schemas import MoneyTotal


class EventRow(BaseModel):
    event_id: str
    name: str
    kind: str
    starts_at: str
    invited: int
    registered: int
    attended: int
    # attended / invited.
    participation: float | None
    # Deals of participants (registered or attended) created from the event's start
    # within the follow-up window, their wins and revenue.
    deals_created: int
    deals_won: int
    revenue: list[MoneyTotal]


class EventsRead(BaseModel):
    follow_up_days: int
    events: list[EventRow]
