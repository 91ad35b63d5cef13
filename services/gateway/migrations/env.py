"""Alembic environment of the gateway's tables (users, teams, sessions)."""

from crm_gateway.apikeys import models as _api_key_models  # noqa: F401 - registers tables
from crm_gateway.audit import models as _audit_models  # noqa: F401 - registers tables
from crm_gateway.auth import models as _auth_models  # noqa: F401 - registers tables
from crm_gateway.idempotency import models as _idempotency_models  # noqa: F401 - registers tables
from crm_gateway.orm import Base
from crm_gateway.teams import models as _team_models  # noqa: F401 - registers tables
from crm_gateway.users import models as _user_models  # noqa: F401 - registers tables
from crm_kernel.migrate import run_env

run_env(Base.metadata)
