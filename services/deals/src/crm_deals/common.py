"""What every concept of the service shares: who may change what, decimal formatting.

Versions and If-Match live in `crm_kernel.versioning`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Depends

from crm_kernel.auth import Principal, Role, require_roles

# Marketers read deals (campaign attribution) but never change them.
Seller = Annotated[
    Principal, Depends(require_roles(Role.ADMIN, Role.HEAD_OF_SALES, Role.SALES_REP))
]
# Pipelines shape everyone's work: only admins and heads of sales edit them.
PipelineManager = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.HEAD_OF_SALES))]


def decimal_str(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 10.00 -> "10", 12.50 -> "12.5"."""
    return format(value.normalize(), "f")
