"""Alembic environment of the campaigns database."""

from crm_campaigns.models import Base
from crm_kernel.migrate import run_env

run_env(Base.metadata)
