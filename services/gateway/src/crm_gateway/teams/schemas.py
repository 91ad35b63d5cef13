"""Team schemas at the API edge: TeamCreate, TeamUpdate, TeamRead."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

TeamName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TeamName


class TeamUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TeamName | None = None
    # The version the client read; an alternative to If-Match.
    version: int | None = None

    @field_validator("name")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Defaults are not validated, so only an explicit `null` reaches here.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    version: int
    created_at: datetime
    updated_at: datetime
