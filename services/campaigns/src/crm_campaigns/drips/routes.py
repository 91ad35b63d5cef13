"""HTTP routes of /sequences (drip sequences): marketers and admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_campaigns.common import MarketingUser
from crm_campaigns.drips import service, triggers
from crm_campaigns.drips.schemas import (
    EnrolmentRead,
    EnrolmentStatus,
    SequenceCreate,
    SequenceRead,
    SequenceStatus,
    SequenceUpdate,
    TriggerKind,
)
from crm_kernel.app import DatabaseDep
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/sequences", tags=["drip sequences"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SequenceRead)
async def create_sequence(
    data: SequenceCreate,
    principal: MarketingUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> SequenceRead:
    """A new sequence, as a draft: nobody is enrolled until it is activated."""
    sequence = await service.create_sequence(db=db, principal=principal, data=data)
    response.headers["Location"] = f"{request.url.path}/{sequence.id}"
    response.headers["ETag"] = etag(sequence.version)
    return sequence


@router.get("", response_model=Page[SequenceRead])
async def list_sequences(
    principal: MarketingUser, db: DatabaseDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[SequenceRead]:
    return await service.list_sequences(db=db, limit=limit, cursor=cursor)


@router.get("/{sequence_id}", response_model=SequenceRead)
async def get_sequence(
    sequence_id: uuid.UUID, principal: MarketingUser, db: DatabaseDep, response: Response
) -> SequenceRead:
    sequence = await service.get_sequence(db=db, sequence_id=str(sequence_id))
    response.headers["ETag"] = etag(sequence.version)
    return sequence


@router.patch("/{sequence_id}", response_model=SequenceRead)
async def update_sequence(
    sequence_id: uuid.UUID,
    data: SequenceUpdate,
    principal: MarketingUser,
    db: DatabaseDep,
    if_match: IfMatch,
    response: Response,
) -> SequenceRead:
    """Rename any time; trigger and steps only while a draft (409 otherwise)."""
    sequence = await service.update_sequence(
        db=db, sequence_id=str(sequence_id), data=data, if_match=if_match
    )
    response.headers["ETag"] = etag(sequence.version)
    return sequence


@router.post("/{sequence_id}/activate", response_model=SequenceRead)
async def activate(
    sequence_id: uuid.UUID, principal: MarketingUser, db: DatabaseDep
) -> SequenceRead:
    """Start enrolling (a segment's present members are recorded, not enrolled) or resume."""
    sequence = await service.set_status(
        db=db, sequence_id=str(sequence_id), status=SequenceStatus.ACTIVE
    )
    if sequence.trigger.kind is TriggerKind.SEGMENT_JOINED:
        await triggers.evaluate_sequence(db, str(sequence_id))
    return sequence


@router.post("/{sequence_id}/pause", response_model=SequenceRead)
async def pause(sequence_id: uuid.UUID, principal: MarketingUser, db: DatabaseDep) -> SequenceRead:
    """Hold every enrolment where it is and enrol nobody until activated again."""
    return await service.set_status(
        db=db, sequence_id=str(sequence_id), status=SequenceStatus.PAUSED
    )


@router.delete("/{sequence_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_sequence(
    sequence_id: uuid.UUID, principal: MarketingUser, db: DatabaseDep
) -> None:
    await service.delete_sequence(db=db, sequence_id=str(sequence_id))


@router.get("/{sequence_id}/enrolments", response_model=Page[EnrolmentRead])
async def list_enrolments(
    sequence_id: uuid.UUID,
    principal: MarketingUser,
    db: DatabaseDep,
    status: EnrolmentStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[EnrolmentRead]:
    """Who is in the sequence, at which step, due when."""
    return await service.list_enrolments(
        db=db, sequence_id=str(sequence_id), status=status, limit=limit, cursor=cursor
    )
