"""Custom field API shapes: CustomFieldCreate and CustomFieldUpdate in, CustomFieldRead out."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# A key is what `custom.<key>` filters and API bodies use: short, lower-case, no dots.
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Option = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Options = Annotated[list[Option], Field(max_length=200)]


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    ENUM = "enum"
    BOOLEAN = "boolean"


class Entity(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"


class CustomFieldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    label: Label
    type: FieldType
    entity: Entity = Entity.CONTACT
    options: Options = Field(default_factory=list, description="The choices of an enum.")
    required: bool = False

    @model_validator(mode="after")
    def _options_fit_type(self) -> CustomFieldCreate:
        if self.type is FieldType.ENUM and not self.options:
            raise ValueError("an enum needs at least one option (`options`)")
        if self.type is not FieldType.ENUM and self.options:
            raise ValueError("only an enum has `options`")
        if len(set(self.options)) != len(self.options):
            raise ValueError("`options` must be distinct")
        return self


class CustomFieldUpdate(BaseModel):
    """Label, options (enum) and `required` may change; key, type and entity may not."""

    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    options: Options | None = None
    required: bool | None = None
    version: int | None = None


class CustomFieldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    label: str
    type: FieldType
    entity: Entity
    options: list[str]
    required: bool
    version: int
    created_at: datetime
    updated_at: datetime
