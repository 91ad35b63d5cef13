"""Alembic environment of the contacts database."""

from crm_contacts.activities import models as _activity_models  # noqa: F401 - registers tables
from crm_contacts.audit import models as _audit_models  # noqa: F401 - registers tables
from crm_contacts.companies import models as _company_models  # noqa: F401 - registers tables
from crm_contacts.contacts import models as _contact_models  # noqa: F401 - registers tables
from crm_contacts.custom_fields import models as _field_models  # noqa: F401 - registers tables
from crm_contacts.exports import models as _export_models  # noqa: F401 - registers tables
from crm_contacts.imports import models as _import_models  # noqa: F401 - registers tables
from crm_contacts.leads import models as _lead_models  # noqa: F401 - registers tables
from crm_contacts.metering import models as _metering_models  # noqa: F401 - registers tables
from crm_contacts.models import Base
from crm_contacts.requests import models as _request_models  # noqa: F401 - registers tables
from crm_contacts.segments import models as _segment_models  # noqa: F401 - registers tables
from crm_contacts.tasks import models as _task_models  # noqa: F401 - registers tables
from crm_contacts.timeline import models as _timeline_models  # noqa: F401 - registers tables
from crm_kernel.migrate import run_env

run_env(Base.metadata)
