"""Preference API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Clock = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]


class PreferenceWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opt_out: dict[str, list[Category]] = Field(
        default_factory=dict,
        description='Refused categories per channel, e.g. {"email": ["bulk"], "sms": ["reminder"]}.'
        ' "transactional" and "critical" cannot be refused.',
    )
    time_zone: Annotated[str, StringConstraints(max_length=64)] | None = None
    quiet_start: Clock | None = None
    quiet_end: Clock | None = None

    @field_validator("opt_out")
    @classmethod
    def _known_channels(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(value) - {"email", "sms"}
        if unknown:
            raise ValueError(f"unknown channel(s): {', '.join(sorted(unknown))}")
        return {channel: sorted(set(categories)) for channel, categories in value.items()}

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError("not an IANA time zone") from exc
        return value


class PreferenceRead(PreferenceWrite):
    model_config = ConfigDict(from_attributes=True)

    contact_id: str
    updated_at: datetime | None = None
