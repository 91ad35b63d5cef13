"""A/B tests: the winner of the test group by unique open or click rate."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class VariantResult:
    variant_id: str
    position: int
    # Messages of the test group that reached the recipient (sent, delivered, bounced later).
    sent: int
    opened: int  # unique
    clicked: int  # unique

    def rate(self, metric: str) -> Fraction:
        hits = self.clicked if metric == "click" else self.opened
        return Fraction(hits, self.sent) if self.sent else Fraction(0)


def choose_winner(results: list[VariantResult], metric: str) -> str:
    """The variant with the best rate of `metric` ("open" or "click").

    Ties go to the better rate of the other metric, then to the earlier
    variant (the control), so a test without signal changes nothing.
    """
    if not results:
        raise ValueError("no variants")
    other = "open" if metric == "click" else "click"
    best = max(results, key=lambda r: (r.rate(metric), r.rate(other), -r.position))
    return best.variant_id
