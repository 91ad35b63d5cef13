"""Segment evaluation on the replica: the kernel filter language over the recipients table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.recipients.models import Recipient, RecipientScore, Segment, SegmentMember
from crm_kernel.filters import (
    FieldSpec,
    FilterError,
    Kind,
    compile_filter,
    json_key,
    json_list_has,
)
from crm_kernel.problems import Conflict

LIFECYCLE_STAGES = frozenset({"awareness", "exploration", "expansion", "commitment", "dissolution"})


def _is_sqlite(session: AsyncSession) -> bool:
    return session.bind is None or session.bind.dialect.name == "sqlite"


def contact_fields(*, sqlite: bool) -> dict[str, FieldSpec]:
    """The filterable fields, named as the contacts service names them."""
    r = Recipient
    return {
        "first_name": FieldSpec("text", r.first_name),
        "last_name": FieldSpec("text", r.last_name),
        "email": FieldSpec("text", r.email),
        "phone": FieldSpec("text", r.phone),
        "position": FieldSpec("text", r.position),
        "company_id": FieldSpec("text", r.company_id),
        "owner_id": FieldSpec("text", r.owner_id),
        "tags": FieldSpec("list", has=json_list_has(r.tags, sqlite=sqlite)),
        "lifecycle_stage": FieldSpec("enum", r.lifecycle_stage, choices=LIFECYCLE_STAGES),
        "created_at": FieldSpec("date", r.created_at),
        "updated_at": FieldSpec("date", r.updated_at),
        "consent.email": FieldSpec("bool", r.consent_email),
        "consent.sms": FieldSpec("bool", r.consent_sms),
    }


def _custom_kinds(raw: Any, kinds: dict[str, Kind]) -> None:
    """Each `custom.<key>`'s kind, from the JSON type of the value it is compared with."""
    if isinstance(raw, list):
        for item in raw:
            _custom_kinds(item, kinds)
        return
    if not isinstance(raw, dict):
        return
    field = raw.get("field")
    if isinstance(field, str) and field.startswith("custom.") and field not in kinds:
        value = raw.get("value")
        if raw.get("op") in ("in", "not_in") and isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, bool):
            kinds[field] = "bool"
        elif isinstance(value, int | float):
            kinds[field] = "number"
        else:
            kinds[field] = "text"
    for key in ("all", "any", "not"):
        _custom_kinds(raw.get(key), kinds)


def filter_clause(raw: object, *, sqlite: bool) -> ColumnElement[bool]:
    """The WHERE clause of a dynamic segment's filter (FilterError when it is not valid)."""
    kinds: dict[str, Kind] = {}
    _custom_kinds(raw, kinds)

    def resolve(name: str) -> FieldSpec | None:
        key = name.removeprefix("custom.")
        if name not in kinds or not key.replace("_", "").isalnum():
            return None
        return FieldSpec(kinds[name], json_key(Recipient.custom, key, kinds[name], sqlite=sqlite))

    return compile_filter(raw, contact_fields(sqlite=sqlite), resolve)


def reachable() -> ColumnElement[bool]:
    """A contact that may be addressed at all: not in the trash, merged away or erased."""
    return (
        Recipient.deleted_at.is_(None)
        & Recipient.merged_into.is_(None)
        & Recipient.erased.is_(False)
    )


async def _membership(
    session: AsyncSession, segment_ids: Iterable[str], *, sqlite: bool
) -> ColumnElement[bool]:
    """Members of any of the segments: listed (static) or matching (dynamic)."""
    ids = list(segment_ids)
    if not ids:
        return false()
    segments = (
        await session.scalars(
            select(Segment).where(Segment.id.in_(ids), Segment.deleted_at.is_(None))
        )
    ).all()
    parts: list[ColumnElement[bool]] = []
    static = [s.id for s in segments if s.kind == "static"]
    if static:
        listed = select(SegmentMember.contact_id).where(SegmentMember.segment_id.in_(static))
        parts.append(Recipient.id.in_(listed))
    for segment in segments:
        if segment.kind == "dynamic":
            try:
                parts.append(filter_clause(segment.filter or {"all": []}, sqlite=sqlite))
            except FilterError as exc:
                raise Conflict(
                    f"Segment {segment.name!r} has a filter this service cannot evaluate: {exc}"
                ) from exc
    return or_(false(), *parts)


async def audience_query(
    session: AsyncSession,
    segment_ids: Iterable[str],
    exclude_segment_ids: Iterable[str],
    rfm_groups: Iterable[str] = (),
) -> Select[Any]:
    """The reachable contacts in any of the segments or RFM groups, minus the excluded segments.

    Unknown or deleted segments select nobody. Consent and suppression are the
    caller's business (a campaign checks them per channel at its snapshot).
    """
    sqlite = _is_sqlite(session)
    included = await _membership(session, segment_ids, sqlite=sqlite)
    groups = list(rfm_groups)
    if groups:
        scored = select(RecipientScore.contact_id).where(RecipientScore.rfm_group.in_(groups))
        included = or_(included, Recipient.id.in_(scored))
    excluded_ids = list(exclude_segment_ids)
    excluded = await _membership(session, excluded_ids, sqlite=sqlite)
    where = reachable() & included
    if excluded_ids:
        # A filter unknown on a contact (NULL) must not exclude it: NOT NULL is NULL.
        where = where & func.coalesce(excluded, false()).is_(False)
    return select(Recipient).where(where).order_by(Recipient.id)
