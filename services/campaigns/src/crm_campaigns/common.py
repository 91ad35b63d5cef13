"""What the service's concepts share: the clock, role dependencies, id parsing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends

from crm_kernel.auth import Principal, Role, require_roles
from crm_kernel.problems import NotFound

# Marketers and admins run campaigns; sales roles may read them (campaigns hold no
# per-owner data beyond aggregate counts, and a rep wants to know what their clients got).
MarketingUser = Annotated[Principal, Depends(require_roles(Role.MARKETER, Role.ADMIN))]


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def parse_id(value: str, what: str = "record") -> str:
    """A path id as a canonical UUID string; 404 for anything else (never a 500)."""
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise NotFound(f"No such {what}.") from exc
