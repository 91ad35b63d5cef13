"""The RFM and CLV model (the ranking runs in SQL: `scoring/service.py`).

Customers are the contacts with at least one won deal. Over all customers:

- recency: days since the last won deal (fewer is better); frequency: won deals;
  monetary: revenue to date in the customer's main currency (the one with the
  most won deals, then the most revenue), ranked among customers of that currency;
- each is scored 1-5 by quintile: 1 + floor(5 x share of customers strictly
  worse), so ties share a score and a lone customer scores 1;
- group: champions (R, F, M >= 4), loyal (F >= 4, R >= 3), new (R >= 4, F <= 2),
  at_risk (R <= 2, F >= 3), hibernating (R <= 2, F <= 2), potential otherwise;
- predicted CLV = revenue to date + average deal x yearly purchase rate x
  horizon years x recency score / 5, where the yearly rate is won deals per year
  since the first win (at least one year counted): a customer who went quiet
  is expected to buy less.

Only the CLV depends on the time of scoring: the scores rank customers, and
time moves every customer's recency alike, so scores change only when won
deals do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from crm_reports.stats import CENT, DAY


@dataclass(frozen=True)
class Score:
    contact_id: str
    recency: int
    frequency: int
    monetary: int
    rfm_group: str
    currency: str
    revenue_to_date: Decimal
    predicted_clv: Decimal
    deals_won: int
    last_won_at: datetime

    def published_part(self) -> tuple[object, ...]:
        """What a change of must be published (not CLV, which drifts with time alone)."""
        return (
            self.recency,
            self.frequency,
            self.monetary,
            self.rfm_group,
            str(self.revenue_to_date),
            self.currency,
        )


def group(r: int, f: int, m: int) -> str:
    if r >= 4 and f >= 4 and m >= 4:
        return "champions"
    if f >= 4 and r >= 3:
        return "loyal"
    if r >= 4 and f <= 2:
        return "new"
    if r <= 2 and f >= 3:
        return "at_risk"
    if r <= 2:
        return "hibernating"
    return "potential"


@dataclass(frozen=True)
class Customer:
    """A customer's won deals summed up, and their 1-5 scores (ranked over all customers)."""

    contact_id: str
    currency: str
    revenue: Decimal
    in_currency: int
    deals_won: int
    first_won_at: datetime
    last_won_at: datetime
    recency: int
    frequency: int
    monetary: int


def score(customer: Customer, as_of: datetime, horizon_years: int) -> Score:
    """The customer's group, revenue to date and predicted CLV as of `as_of`."""
    c = customer
    years = max((as_of - c.first_won_at).total_seconds() / DAY / 365.25, 1.0)
    average = c.revenue / c.in_currency
    future = average * Decimal(c.deals_won / years) * horizon_years * Decimal(c.recency) / 5
    return Score(
        contact_id=c.contact_id,
        recency=c.recency,
        frequency=c.frequency,
        monetary=c.monetary,
        rfm_group=group(c.recency, c.frequency, c.monetary),
        currency=c.currency,
        revenue_to_date=c.revenue.quantize(CENT),
        predicted_clv=(c.revenue + future).quantize(CENT),
        deals_won=c.deals_won,
        last_won_at=c.last_won_at,
    )
