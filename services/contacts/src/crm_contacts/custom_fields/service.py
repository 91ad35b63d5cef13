"""Custom field use cases, and the checks other concepts run on `custom` values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from crm_contacts.audit import service as audit
from crm_contacts.audit.service import audit_change
from crm_contacts.common import stale, utcnow
from crm_contacts.companies.models import Company
from crm_contacts.contacts.models import Contact
from crm_contacts.custom_fields.models import CustomField
from crm_contacts.custom_fields.schemas import (
    CustomFieldCreate,
    CustomFieldRead,
    CustomFieldUpdate,
    FieldType,
)
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.filters import json_key
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, Unprocessable
from crm_kernel.versioning import check_version

RECORD_TYPE = "custom_field"
TEXT_MAX = 2000
# The filter language's kinds (crm_kernel.filters.Kind) for each field type.
_KINDS = {
    FieldType.TEXT: "text",
    FieldType.NUMBER: "number",
    FieldType.DATE: "date",
    FieldType.ENUM: "enum",
    FieldType.BOOLEAN: "bool",
}


def to_read(field: CustomField) -> CustomFieldRead:
    return CustomFieldRead.model_validate(field)


async def definitions(session: AsyncSession, entity: str) -> dict[str, CustomField]:
    """The fields defined for contacts or companies, by key."""
    rows = await session.scalars(select(CustomField).where(CustomField.entity == entity))
    return {f.key: f for f in rows}


async def field_kinds(session: AsyncSession, entity: str = "contact") -> dict[str, str]:
    """key -> filter kind ("text", "number", "date", "enum", "bool") for `custom.<key>` filters."""
    rows = await session.execute(
        select(CustomField.key, CustomField.type).where(CustomField.entity == entity)
    )
    return {key: _KINDS[FieldType(kind)] for key, kind in rows}


def _invalid(key: str, message: str) -> dict[str, str]:
    return {"field": f"custom.{key}", "location": "body", "message": message}


def _check_value(field: CustomField, value: Any) -> tuple[Any, str | None]:
    """The value as stored, or an error message for a value that does not fit the type."""
    kind = FieldType(field.type)
    if kind is FieldType.BOOLEAN:
        return (value, None) if isinstance(value, bool) else (None, "must be true or false")
    if kind is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, "must be a number"
        return (value, None) if math.isfinite(value) else (None, "must be a finite number")
    if not isinstance(value, str):
        return None, "must be a string" if kind is not FieldType.DATE else "must be a date"
    if kind is FieldType.DATE:
        try:
            return date.fromisoformat(value).isoformat(), None
        except ValueError:
            return None, "must be a date (YYYY-MM-DD)"
    if kind is FieldType.ENUM:
        if value not in field.options:
            return None, f"must be one of: {', '.join(field.options)}"
        return value, None
    if len(value) > TEXT_MAX:
        return None, f"at most {TEXT_MAX} characters"
    return value, None


async def validate_custom(
    session: AsyncSession, entity: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """`values` checked against the definitions (422 naming each `custom.<key>`), normalised.

    A `null` value means "no value" and is dropped; required fields must have one.
    """
    defined = await definitions(session, entity)
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}
    for key, value in values.items():
        field = defined.get(key)
        if field is None:
            errors.append(_invalid(key, f"no custom field {key!r} is defined for a {entity}"))
            continue
        if value is None:
            continue
        stored, problem = _check_value(field, value)
        if problem:
            errors.append({**_invalid(key, problem), "type": field.type})
        else:
            clean[key] = stored
    for key, field in defined.items():
        if field.required and key not in clean and key not in {e["field"][7:] for e in errors}:
            errors.append(_invalid(key, "required"))
    if errors:
        raise Unprocessable("Some custom field values are not valid.", errors=errors)
    return clean


async def _load(session: AsyncSession, field_id: str) -> CustomField:
    field = await session.get(CustomField, field_id)
    if field is None:
        raise NotFound(f"No custom field {field_id}.")
    return field


def _key_taken(data: CustomFieldCreate) -> Conflict:
    return Conflict(
        f"A {data.entity} custom field {data.key!r} already exists.",
        errors=[{"field": "key", "location": "body", "message": "already defined"}],
    )


async def create_field(
    *, db: Database, principal: Principal, data: CustomFieldCreate
) -> CustomFieldRead:
    """Define a field (admins); 409 if the entity already has this key."""
    now = utcnow()
    try:
        async with db.transaction() as session:
            if data.key in await definitions(session, data.entity):
                raise _key_taken(data)
            field = CustomField(
                id=str(new_id()),
                entity=data.entity,
                key=data.key,
                label=data.label,
                type=data.type,
                options=data.options,
                required=data.required,
                created_at=now,
                updated_at=now,
            )
            session.add(field)
            await session.flush()
            read = to_read(field)
            audit_change(session, principal, RECORD_TYPE, "create", None, read)
    except IntegrityError as exc:  # a concurrent create of the same key
        raise _key_taken(data) from exc
    return read


async def get_field(*, db: Database, field_id: str) -> CustomFieldRead:
    async with db.session() as session:
        return to_read(await _load(session, field_id))


async def list_fields(
    *, db: Database, entity: str | None, limit: int, cursor: str | None
) -> Page[CustomFieldRead]:
    """The definitions (of one entity, or all), by key."""
    query = select(CustomField)
    if entity:
        query = query.where(CustomField.entity == entity)
    keys = parse_sort(None, {"key": CustomField.key}, "key", CustomField.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    return Page[CustomFieldRead](items=[to_read(r[0]) for r in rows], next_cursor=next_cursor)


async def update_field(
    *,
    db: Database,
    principal: Principal,
    field_id: str,
    data: CustomFieldUpdate,
    expected_version: int | None,
) -> CustomFieldRead:
    """Change the label, an enum's options or `required` (admins)."""
    try:
        async with db.transaction() as session:
            field = await _load(session, field_id)
            check_version(field.version, expected_version, data.version)
            before = to_read(field)
            if data.options is not None:
                if field.type != FieldType.ENUM:
                    raise Unprocessable(
                        "Only an enum has options.",
                        errors=[{"field": "options", "location": "body", "message": "not an enum"}],
                    )
                if not data.options or len(set(data.options)) != len(data.options):
                    raise Unprocessable(
                        "An enum needs distinct options.",
                        errors=[{"field": "options", "location": "body", "message": "invalid"}],
                    )
                field.options = data.options
            if data.label is not None:
                field.label = data.label
            if data.required is not None:
                field.required = data.required
            field.updated_at = utcnow()
            await session.flush()
            read = to_read(field)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
    except StaleDataError as exc:
        raise stale("custom field") from exc
    return read


async def _records_holding(session: AsyncSession, field: CustomField) -> int:
    """How many records (live or in the trash) have a value for this field."""
    table = Contact if field.entity == "contact" else Company
    sqlite = session.get_bind().dialect.name == "sqlite"
    holding = json_key(table.custom, field.key, "text", sqlite=sqlite).is_not(None)
    return int(await session.scalar(select(func.count()).select_from(table).where(holding)) or 0)


async def delete_field(
    *, db: Database, principal: Principal, field_id: str, expected_version: int | None
) -> None:
    """Remove a definition (admins); 409 while any record still has a value for it."""
    async with db.transaction() as session:
        field = await _load(session, field_id)
        check_version(field.version, expected_version)
        holding = await _records_holding(session, field)
        if holding:
            raise Conflict(
                f"{holding} record(s) still have a value for {field.key!r}; clear them first.",
                errors=[{"field": "key", "location": "path", "message": "in use"}],
                records=holding,
            )
        audit.record(
            session,
            actor_id=principal.user_id,
            action="delete",
            record_type=RECORD_TYPE,
            record_id=field.id,
            before=to_read(field),
            after=None,
        )
        await session.delete(field)
