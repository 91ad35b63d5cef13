"""The campaigns service's database tables (each concept's models module adds its own)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    metadata = MetaData()


def load_all_models() -> None:
    """Import every models module, so `Base.metadata` is complete (Alembic, tests)."""
    import importlib
    import pkgutil

    import crm_campaigns

    # Every package's models module, including those other concepts add (events, drips).
    for module in pkgutil.iter_modules(crm_campaigns.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"crm_campaigns.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"crm_campaigns.{module.name}.models":
                    raise
