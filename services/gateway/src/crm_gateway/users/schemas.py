"""User schemas at the API edge: UserCreate, UserUpdate, UserRead."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

from crm_kernel.auth import Role

PASSWORD_MIN_LENGTH = 10

Email = Annotated[EmailStr, AfterValidator(lambda value: value.lower())]
Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=1024)]
FullName = Annotated[str, Field(min_length=1, max_length=200)]
TeamIds = Annotated[list[str], Field(max_length=100)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    role: Role
    password: Password
    team_ids: TeamIds = []
    is_active: bool = True


class UserUpdate(BaseModel):
    """Only the fields sent change; the e-mail is the login and does not."""

    model_config = ConfigDict(extra="forbid")

    full_name: FullName | None = None
    role: Role | None = None
    team_ids: TeamIds | None = None
    is_active: bool | None = None
    password: Password | None = None
    # The version the client read; an alternative to If-Match.
    version: int | None = None

    @field_validator("full_name", "role", "team_ids", "is_active", "password")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Defaults are not validated, so only an explicit `null` reaches here.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    full_name: str
    role: Role
    team_ids: list[str]
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class OffboardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    successor_id: str = Field(min_length=1, max_length=36)


class OffboardRead(BaseModel):
    """The offboarded user (now inactive) and what was handed over and cut off."""

    user: UserRead
    successor_id: str
    revoked_api_keys: int = Field(description="API keys of the user revoked now.")
