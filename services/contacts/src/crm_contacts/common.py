"""Versions as ETags, If-Match preconditions, and small helpers shared by the concepts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header

from crm_kernel.problems import BadRequest, PreconditionFailed


def utcnow() -> datetime:
    return datetime.now(UTC)


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """The version an `If-Match` header expects (None: no precondition, or `*`).

    Accepts `3`, `"3"` and `W/"3"`, since clients echo our ETag either way.
    """
    if if_match is None or if_match.strip() in ("", "*"):
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(
            "If-Match must be a version as given in the ETag header.",
            errors=[{"field": "If-Match", "location": "header", "message": "not a version"}],
        ) from exc


# The version the caller read, from If-Match; None when the header is absent.
IfMatch = Annotated[int | None, Depends(parse_if_match)]


def check_version(current: int, *expected: int | None) -> None:
    """412 when the caller's version (If-Match or body) is not the stored one."""
    for version in expected:
        if version is not None and version != current:
            raise PreconditionFailed(
                f"The record changed since version {version}; it is now at version {current}.",
                current_version=current,
            )


def stale(kind: str) -> PreconditionFailed:
    """The 412 for an edit that lost a race with a concurrent one (caught at flush)."""
    return PreconditionFailed(f"The {kind} was changed by someone else meanwhile; reload it.")
