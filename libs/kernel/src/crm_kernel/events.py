"""Event envelope (CloudEvents 1.0 plus the acting user) and the base of event schemas."""

from __future__ import annotations

import builtins
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field

from crm_kernel.ids import new_id


class IntegrationEvent(BaseModel):
    """Base of every event and command schema: the `data` of an envelope.

    A subclass names its subject in `type` (`crm.<service>.<entity>.<verb>`)
    and bumps `schema_version` only for additive changes; a rename or removal
    is a new type. Unknown fields are kept when reading, so an older consumer
    survives a newer producer.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    # A command is work for one service (work-queue stream); an event is a fact.
    is_command: ClassVar[bool] = False

    def envelope(self, *, subject: str | None = None, actor: str | None = None) -> Envelope:
        """Wrap this event in a new envelope with a fresh id and the current time."""
        return Envelope(
            type=self.type,
            source=f"/{self.type.split('.')[1]}",
            subject=subject,
            actor=actor,
            dataversion=self.schema_version,
            data=self.model_dump(mode="json"),
        )


class Envelope(BaseModel):
    """CloudEvents 1.0 structured-mode envelope; `id` is also the `Nats-Msg-Id`."""

    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(new_id()))
    type: str
    source: str
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    actor: str | None = None
    dataversion: int = 1
    data: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        return cls.model_validate(orjson.loads(raw))

    def event(self, schema: builtins.type[IntegrationEvent]) -> IntegrationEvent:
        """Read `data` as the given schema."""
        return schema.model_validate(self.data)

    @property
    def event_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.id)
