"""Alembic environment of the deals database."""

from crm_deals.models import Base
from crm_kernel.migrate import run_env

run_env(Base.metadata)
