"""Overview report shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class OverviewRead(BaseModel):
    """Headline counts over the records the caller may see."""

    contacts: int
    contacts_created: int
    period_from: datetime | None
    period_to: datetime | None
