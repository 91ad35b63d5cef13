"""Small helpers shared by the concepts (versions and If-Match live in `crm_kernel.versioning`)."""

from __future__ import annotations

from datetime import UTC, datetime

from crm_kernel.problems import PreconditionFailed


def utcnow() -> datetime:
    return datetime.now(UTC)


def stale(kind: str) -> PreconditionFailed:
    """The 412 for an edit that lost a race with a concurrent one (caught at flush)."""
    return PreconditionFailed(f"The {kind} was changed by someone else meanwhile; reload it.")
