"""Events published by the reports service: customer scores other services target."""

from __future__ import annotations

from crm_kernel.events import IntegrationEvent


class ContactScored(IntegrationEvent):
    """A contact's RFM scores and lifetime value changed (published only on change).

    Scores are 1 (worst) to 5 (best); `rfm_group` is a named group such as
    champions, loyal, at_risk, hibernating, new. `as_of` orders updates: a
    consumer keeps the newest.
    """

    type = "crm.reports.contact.scored"
    contact_id: str
    recency: int
    frequency: int
    monetary: int
    rfm_group: str
    # Decimal strings in `currency` (the contact's main currency).
    revenue_to_date: str
    predicted_clv: str
    currency: str
    as_of: str


CONTRACTS = (ContactScored,)
