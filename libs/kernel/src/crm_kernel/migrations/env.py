"""Alembic environment of the kernel's own tables (version table alembic_version_kernel)."""

from crm_kernel.migrate import run_env
from crm_kernel.tables import metadata

run_env(metadata)
