"""Company API shapes: CompanyCreate and CompanyUpdate in, CompanyRead out."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from crm_contacts.contacts.schemas import Custom, Phone, Tags

CompanyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# Letters of any script (пример.рф) and digits, dot-separated, a top-level label of letters.
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}$")


def _domain(value: str) -> str:
    """`https://www.Example.com/` -> `example.com`: what people paste, as one comparable form."""
    domain = value.strip().lower()
    domain = re.sub(r"^[a-z]+://", "", domain).split("/", 1)[0].removeprefix("www.")
    if not _DOMAIN.match(domain):
        raise ValueError("not a domain name such as example.com")
    return domain


Domain = Annotated[str, StringConstraints(max_length=300), AfterValidator(_domain)]


class CompanyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CompanyName
    domain: Domain | None = None
    phone: Phone | None = None
    owner_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller.")
    tags: Tags = Field(default_factory=list)
    custom: Custom = Field(default_factory=dict)


class CompanyUpdate(BaseModel):
    """Only the fields sent change; `null` clears an optional one. Owners change by reassign."""

    model_config = ConfigDict(extra="forbid")

    name: CompanyName | None = None
    domain: Domain | None = None
    phone: Phone | None = None
    tags: Tags | None = None
    custom: Custom | None = None
    version: int | None = None

    @field_validator("name", "tags", "custom")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class CompanyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    domain: str | None
    phone: str | None
    owner_id: uuid.UUID
    tags: list[str]
    custom: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
