"""The contact fields a segment filter may name, compiled over the contacts table.

The same names serve the campaigns service on its replica of recipients, so a
segment definition means the same thing in both places.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import ColumnElement, DateTime
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.contacts.models import Contact
from crm_contacts.contacts.schemas import LifecycleStage
from crm_contacts.custom_fields.service import field_kinds
from crm_kernel.filters import FieldSpec, FilterError, Kind, compile_filter, json_key, json_list_has
from crm_kernel.problems import Unprocessable

# Keys of custom fields as their definitions allow; anything else is no field at all
# (and never reaches a JSON path).
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_KINDS: frozenset[str] = frozenset({"text", "number", "date", "bool", "enum"})


def contact_fields(*, sqlite: bool) -> dict[str, FieldSpec]:
    """The fixed fields of a contact, by the name a filter uses."""
    return {
        "first_name": FieldSpec("text", Contact.first_name),
        "last_name": FieldSpec("text", Contact.last_name),
        "email": FieldSpec("text", Contact.email),
        "phone": FieldSpec("text", Contact.phone),
        "position": FieldSpec("text", Contact.position),
        "company_id": FieldSpec("text", Contact.company_id),
        "owner_id": FieldSpec("text", Contact.owner_id),
        "tags": FieldSpec("list", has=json_list_has(Contact.tags, sqlite=sqlite)),
        "lifecycle_stage": FieldSpec(
            "enum", Contact.lifecycle_stage, choices=frozenset(s.value for s in LifecycleStage)
        ),
        "created_at": FieldSpec("date", Contact.created_at),
        "updated_at": FieldSpec("date", Contact.updated_at),
        "consent.email": FieldSpec("bool", Contact.consent_email),
        "consent.sms": FieldSpec("bool", Contact.consent_sms),
    }


def _custom_field(name: str, kinds: Mapping[str, str], *, sqlite: bool) -> FieldSpec | None:
    """`custom.<key>` typed by its definition; text while the key has none."""
    if not name.startswith("custom."):
        return None
    key = name.removeprefix("custom.")
    if not _CUSTOM_KEY.match(key):
        return None
    kind = cast(Kind, kinds.get(key, "text") if kinds.get(key) in _KINDS else "text")
    column: ColumnElement[Any] = json_key(Contact.custom, key, kind, sqlite=sqlite)
    if kind == "date" and not sqlite:
        # Stored as "YYYY-MM-DD" text; PostgreSQL compares it as a time only when cast.
        column = sql_cast(column, DateTime(timezone=True))
    return FieldSpec(kind, column)


async def contact_condition(
    session: AsyncSession,
    raw: object,
    *,
    sqlite: bool,
    path: str = "filter",
    location: str = "body",
) -> ColumnElement[bool]:
    """The WHERE clause of a filter over contacts; 422 naming the filter's bad part."""
    kinds = await field_kinds(session)
    try:
        return compile_filter(
            raw,
            contact_fields(sqlite=sqlite),
            lambda name: _custom_field(name, kinds, sqlite=sqlite),
            path=path,
        )
    except FilterError as exc:
        raise invalid_filter(exc, location) from exc


def parse_filter_param(text: str) -> object:
    """The JSON of a `?filter=` query parameter; 422 naming `filter` when it is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        problem = FilterError("filter", "must be a JSON filter (the language of segments)")
        raise invalid_filter(problem, "query") from exc


def invalid_filter(exc: FilterError, location: str = "body") -> Unprocessable:
    return Unprocessable(
        f"The filter is not valid: {exc.message}",
        errors=[{"field": exc.path, "location": location, "message": exc.message}],
    )
