"""The deals service's database tables (each concept's models module adds its own)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = MetaData()


def load_all_models() -> None:
    """Import every models module, so `Base.metadata` is complete (Alembic, tests)."""
    import crm_deals.automations.models
    import crm_deals.board.totals
    import crm_deals.contact_replica
    import crm_deals.deals.models
    import crm_deals.orders.models
    import crm_deals.pipelines.models
    import crm_deals.products.models
    import crm_deals.proposals.models  # noqa: F401
