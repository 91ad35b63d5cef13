"""The RFM and CLV model (pure: won deals in, scores out).

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
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
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


def quintile(value: float, population: list[float]) -> int:
    """1 + floor(5 x share of `population` (sorted, worse first) strictly below `value`)."""
    worse = bisect_left(population, value)
    return min(5, 1 + (5 * worse) // len(population))


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


def score_customers(
    wins: Iterable[tuple[str, datetime, Decimal, str]], as_of: datetime, horizon_years: int
) -> dict[str, Score]:
    """Scores of every customer from their won deals (contact, closed at, amount, currency)."""
    deals: dict[str, list[tuple[datetime, Decimal, str]]] = defaultdict(list)
    for contact, closed_at, amount, currency in wins:
        deals[contact].append((closed_at, amount, currency))
    facts = {}
    for contact, won in deals.items():
        by_currency: dict[str, list[Decimal]] = defaultdict(list)
        for _, amount, currency in won:
            by_currency[currency].append(amount)
        currency = max(by_currency, key=lambda c: (len(by_currency[c]), sum(by_currency[c]), c))
        first = min(w[0] for w in won)
        last = max(w[0] for w in won)
        revenue = sum(by_currency[currency], Decimal(0))
        facts[contact] = (currency, first, last, len(won), revenue, len(by_currency[currency]))
    # Sorted worse first: recency negated (older is worse).
    recencies = sorted(-(as_of - f[2]).total_seconds() for f in facts.values())
    frequencies = sorted(float(f[3]) for f in facts.values())
    monetary: dict[str, list[float]] = defaultdict(list)
    for f in facts.values():
        monetary[f[0]].append(float(f[4]))
    for values in monetary.values():
        values.sort()
    scores = {}
    for contact, (currency, first, last, count, revenue, in_currency) in facts.items():
        r = quintile(-(as_of - last).total_seconds(), recencies)
        fq = quintile(float(count), frequencies)
        m = quintile(float(revenue), monetary[currency])
        years = max((as_of - first).total_seconds() / DAY / 365.25, 1.0)
        average = revenue / in_currency
        future = average * Decimal(count / years) * horizon_years * Decimal(r) / 5
        scores[contact] = Score(
            contact_id=contact,
            recency=r,
            frequency=fq,
            monetary=m,
            rfm_group=group(r, fq, m),
            currency=currency,
            revenue_to_date=revenue.quantize(CENT),
            predicted_clv=(revenue + future).quantize(CENT),
            deals_won=count,
            last_won_at=last,
        )
    return scores
