"""Alembic environment of the reports database."""

from crm_kernel.migrate import run_env
from crm_reports.models import Base

run_env(Base.metadata)
