"""Segment API shapes: SegmentCreate and SegmentUpdate in, SegmentRead out."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from crm_contacts.contacts.schemas import ContactRead

SegmentName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Ids per add/remove request, and so per `members_changed` event at most.
MEMBER_IDS_MAX = 1000


class SegmentKind(StrEnum):
    STATIC = "static"
    DYNAMIC = "dynamic"


class SegmentCreate(BaseModel):
    """A dynamic segment needs a `filter`; a static one gets members by id or filter later."""

    model_config = ConfigDict(extra="forbid")

    name: SegmentName
    kind: SegmentKind
    filter: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _filter_fits_kind(self) -> SegmentCreate:
        if self.kind is SegmentKind.DYNAMIC and self.filter is None:
            raise ValueError("a dynamic segment needs a filter")
        if self.kind is SegmentKind.STATIC and self.filter is not None:
            raise ValueError("a static segment has no filter (add members by filter instead)")
        return self


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SegmentName | None = None
    filter: dict[str, Any] | None = None
    version: int | None = None


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: SegmentKind
    filter: dict[str, Any] | None
    owner_id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class MembersChange(BaseModel):
    """Contacts to add or remove: listed by id, or all the caller sees matching a filter."""

    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MEMBER_IDS_MAX)] | None = None
    filter: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> MembersChange:
        if (self.ids is None) == (self.filter is None):
            raise ValueError('send either "ids" or "filter"')
        return self


class MembersChanged(BaseModel):
    segment_id: uuid.UUID
    added: int = 0
    removed: int = 0


class SegmentSize(BaseModel):
    segment_id: uuid.UUID | None = None
    size: int


class FilterPreview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: dict[str, Any]


class Preview(BaseModel):
    """How many contacts the caller sees match, and the first of them."""

    size: int
    items: list[ContactRead]
