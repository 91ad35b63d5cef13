"""Alembic environment of the contacts database."""

from crm_contacts.contacts import models as _contact_models  # noqa: F401 - registers tables
from crm_contacts.models import Base
from crm_kernel.migrate import run_env

run_env(Base.metadata)
