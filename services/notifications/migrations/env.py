"""Alembic environment of the notifications database."""

from crm_kernel.migrate import run_env
from crm_notifications.models import Base

run_env(Base.metadata)
