"""Line and proposal totals in Decimal, rounded half-up to the currency's minor unit."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from crm_deals.money import quantize

HUNDRED = Decimal(100)


def line_total(
    quantity: Decimal, unit_price: Decimal, discount_percent: Decimal, currency: str
) -> Decimal:
    """quantity x unit price less the discount, rounded once, half-up, to the minor unit.

    Each line is rounded (as it is printed on the proposal), and the total is
    the sum of the printed lines, so the document always adds up.
    """
    return quantize(quantity * unit_price * (HUNDRED - discount_percent) / HUNDRED, currency)


def proposal_total(lines: Iterable[Decimal], currency: str) -> Decimal:
    return quantize(sum(lines, Decimal(0)), currency)
