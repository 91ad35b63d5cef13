"""Alembic environment of the deals database."""

from crm_deals.models import Base, load_all_models
from crm_kernel.migrate import run_env

load_all_models()
run_env(Base.metadata)
