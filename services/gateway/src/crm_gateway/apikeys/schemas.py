"""API key schemas: create (scopes checked), read (never the key), created (the key, once)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_gateway.upstreams import ROUTES

ACTIONS = ("read", "write")


def valid_scopes() -> list[str]:
    """Every scope a key may hold: `<resource>:read` and `<resource>:write`."""
    return [f"{resource}:{action}" for resource in sorted(ROUTES) for action in ACTIONS]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(
        min_length=1,
        max_length=200,
        description="`<resource>:read` (GET) or `<resource>:write` (POST, PUT, PATCH, DELETE), "
        "e.g. `contacts:read`, `leads:write`.",
    )
    user_id: str = Field(description="The user the key acts as (their role and visibility).")

    @field_validator("scopes")
    @classmethod
    def _known(cls, scopes: list[str]) -> list[str]:
        known = set(valid_scopes())
        unknown = [s for s in scopes if s not in known]
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        return sorted(set(scopes))


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    scopes: list[str]
    user_id: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The key itself: shown this once, never again.")
