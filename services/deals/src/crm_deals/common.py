"""What every concept of the service shares: ETags and If-Match, who may change what.

The If-Match helpers mirror the gateway's (`crm_gateway.common`); a service may
not import another, so they belong in the kernel (see the README).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Depends, Header

from crm_kernel.auth import Principal, Role, require_roles
from crm_kernel.problems import BadRequest, PreconditionFailed

# Marketers read deals (campaign attribution) but never change them.
Seller = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.HEAD_OF_SALES, Role.SALES_REP))
]
# Pipelines shape everyone's work: only admins and heads of sales edit them.
PipelineManager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.HEAD_OF_SALES))]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> int | None:
    """The version an `If-Match` header expects (None: no precondition or `*`).

    Accepts `3`, `"3"` and `W/"3"`, since clients echo our ETag either way.
    """
    if header is None or header.strip() in ("", "*"):
        return None
    value = header.strip().removeprefix("W/").strip('"')
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(
            "If-Match must be a version as given in the ETag header.",
            errors=[{"field": "If-Match", "location": "header", "message": "not a version"}],
        ) from exc


def if_match_header(if_match: Annotated[str | None, Header()] = None) -> int | None:
    return parse_if_match(if_match)


# The version the caller's If-Match expects (None: no precondition).
ExpectedVersion = Annotated[int | None, Depends(if_match_header)]


def check_version(current: int, expected: int | None) -> None:
    """412 when the caller's If-Match version is not the stored one."""
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"The record changed since version {expected}; it is now at version {current}.",
            current_version=current,
        )


def decimal_str(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 10.00 -> "10", 12.50 -> "12.5"."""
    return format(value.normalize(), "f")
