"""RFM and CLV report shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from crm_reports.overview.schemas import MoneyTotal


class Segment(BaseModel):
    rfm_group: str
    customers: int
    revenue_to_date: list[MoneyTotal]
    predicted_clv: list[MoneyTotal]


class RfmRow(BaseModel):
    contact_id: str
    owner_id: str
    recency: int
    frequency: int
    monetary: int
    rfm_group: str
    deals_won: int
    last_won_at: datetime


class ClvRow(BaseModel):
    contact_id: str
    owner_id: str
    rfm_group: str
    currency: str
    revenue_to_date: str
    predicted_clv: str


class RfmRead(BaseModel):
    as_of: datetime
    segments: list[Segment]
    customers: list[RfmRow]


class ClvRead(BaseModel):
    as_of: datetime
    horizon_years: int
    segments: list[Segment]
    customers: list[ClvRow]
