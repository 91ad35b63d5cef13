"""A safe filter language for segments and lists, compiled to SQL.

A filter is JSON a user (or a saved segment) supplies:

    {"all": [
        {"field": "tags", "op": "has", "value": "vip"},
        {"any": [{"field": "lifecycle_stage", "op": "in", "value": ["commitment", "expansion"]},
                 {"field": "custom.budget", "op": "gte", "value": 1000}]},
        {"not": {"field": "email", "op": "is_null", "value": true}}
    ]}

Only whitelisted fields and operators exist; values are bound parameters, never
SQL text. Each service describes its fields once (`FieldSpec`) over its own table
or replica, so contacts and campaigns evaluate the same segment the same way.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import Float, and_, cast, false, func, not_, or_, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from crm_kernel.db import casefold

Kind = Literal["text", "number", "date", "bool", "list", "enum"]

OPERATORS: dict[str, frozenset[str]] = {
    "text": frozenset({"eq", "ne", "in", "not_in", "contains", "starts_with", "is_null"}),
    "enum": frozenset({"eq", "ne", "in", "not_in", "is_null"}),
    "number": frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "is_null"}),
    "date": frozenset({"eq", "lt", "lte", "gt", "gte", "is_null"}),
    "bool": frozenset({"eq", "is_null"}),
    "list": frozenset({"has", "has_any", "has_all", "has_none"}),
}
MAX_CONDITIONS = 50
MAX_DEPTH = 5


class FilterError(ValueError):
    """The filter is not valid; `path` says where (e.g. "filter.all.1.value")."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1, max_length=100)
    op: str = Field(min_length=1, max_length=20)
    value: Any = None


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")
    all: list[Node] | None = Field(default=None, max_length=MAX_CONDITIONS)
    any: list[Node] | None = Field(default=None, max_length=MAX_CONDITIONS)
    not_: Node | None = Field(default=None, alias="not")


Node = Condition | Group
Group.model_rebuild()


@dataclass(frozen=True)
class FieldSpec:
    """One filterable field: its kind and the SQL expression it reads.

    `column` is the expression for scalar kinds; a `list` field gives `has`, a
    function returning "the row's list holds this value" (see `json_list_has`).
    `choices` restricts an enum's values.
    """

    kind: Kind
    column: ColumnElement[Any] | Any = None
    has: Callable[[str], ColumnElement[bool]] | None = None
    choices: frozenset[str] | None = None


Fields = Mapping[str, FieldSpec]
# Resolves fields outside the fixed map, e.g. "custom.<key>"; None when unknown.
Resolver = Callable[[str], FieldSpec | None]


def json_list_has(column: Any, *, sqlite: bool) -> Callable[[str], ColumnElement[bool]]:
    """`has` for a JSON array column (tags), on SQLite and PostgreSQL."""

    def has(value: str) -> ColumnElement[bool]:
        if sqlite:
            elements = func.json_each(column).table_valued("value")
            return select(elements.c.value).where(elements.c.value == value).exists()
        return cast(column, JSONB).contains([value])

    return has


def json_key(column: Any, key: str, kind: Kind, *, sqlite: bool) -> ColumnElement[Any]:
    """One key of a JSON object column (custom fields) as text, a number or a boolean."""
    if sqlite:
        value = func.json_extract(column, f"$.{key}")
        return cast(value, Float) if kind == "number" else value
    text = cast(column, JSONB)[key].astext
    if kind == "number":
        return cast(text, Float)
    if kind == "bool":
        return text == "true"
    return text


def parse(raw: object, path: str = "filter") -> Node:
    """Validate the JSON shape; FilterError names the first problem."""
    try:
        node: Node = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(
            str(p) for p in error["loc"] if not str(p).startswith(("Condition", "Group"))
        )
        raise FilterError(f"{path}.{loc}" if loc else path, error["msg"]) from exc
    return node


def compile_filter(
    raw: object, fields: Fields, resolve: Resolver | None = None, path: str = "filter"
) -> ColumnElement[bool]:
    """A WHERE clause for the filter over the described fields, or FilterError."""
    compiler = _Compiler(fields, resolve)
    return compiler.node(parse(raw, path), path, 1)


class _Compiler:
    def __init__(self, fields: Fields, resolve: Resolver | None):
        self.fields = fields
        self.resolve = resolve
        self.count = 0

    def node(self, node: Node, path: str, depth: int) -> ColumnElement[bool]:
        if depth > MAX_DEPTH:
            raise FilterError(path, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, Condition):
            self.count += 1
            if self.count > MAX_CONDITIONS:
                raise FilterError(path, f"more than {MAX_CONDITIONS} conditions")
            return self.condition(node, path)
        given = [k for k in ("all", "any", "not_") if getattr(node, k) is not None]
        if len(given) != 1:
            raise FilterError(path, 'a group needs exactly one of "all", "any" or "not"')
        if node.not_ is not None:
            return not_(self.node(node.not_, f"{path}.not", depth + 1))
        key = given[0]
        children = getattr(node, key)
        parts = [self.node(c, f"{path}.{key}.{i}", depth + 1) for i, c in enumerate(children)]
        if key == "all":
            return and_(true(), *parts)
        return or_(false(), *parts)

    def condition(self, cond: Condition, path: str) -> ColumnElement[bool]:
        spec = self.fields.get(cond.field) or (self.resolve(cond.field) if self.resolve else None)
        if spec is None:
            raise FilterError(f"{path}.field", f"unknown field {cond.field!r}")
        if cond.op not in OPERATORS[spec.kind]:
            allowed = ", ".join(sorted(OPERATORS[spec.kind]))
            raise FilterError(f"{path}.op", f"{cond.op!r} is not allowed here (use {allowed})")
        value_path = f"{path}.value"
        if cond.op == "is_null":
            if not isinstance(cond.value, bool):
                raise FilterError(value_path, "is_null takes true or false")
            return spec.column.is_(None) if cond.value else spec.column.is_not(None)
        if spec.kind == "list":
            return self.list_condition(spec, cond, value_path)
        if cond.op in ("in", "not_in"):
            values = _as_list(cond.value, value_path)
            converted = [_convert(spec, v, value_path) for v in values]
            clause = spec.column.in_(converted)
            return clause if cond.op == "in" else or_(spec.column.is_(None), not_(clause))
        value = _convert(spec, cond.value, value_path)
        column = spec.column
        if cond.op == "contains":
            return casefold(column).contains(str(value).lower(), autoescape=True)
        if cond.op == "starts_with":
            return casefold(column).startswith(str(value).lower(), autoescape=True)
        if cond.op == "ne":
            return or_(column.is_(None), column != value)
        compare: ColumnElement[bool] = _COMPARISONS[cond.op](column, value)
        return compare

    def list_condition(self, spec: FieldSpec, cond: Condition, path: str) -> ColumnElement[bool]:
        assert spec.has is not None, "a list field needs `has`"
        if cond.op == "has":
            return spec.has(_text(cond.value, path))
        values = [_text(v, path) for v in _as_list(cond.value, path)]
        holds = [spec.has(v) for v in values]
        if cond.op == "has_any":
            return or_(false(), *holds)
        if cond.op == "has_all":
            return and_(true(), *holds)
        return not_(or_(false(), *holds))


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
_ADAPTER: TypeAdapter[Node] = TypeAdapter(Node)


def _as_list(value: object, path: str) -> list[object]:
    if not isinstance(value, list) or not value:
        raise FilterError(path, "a non-empty list is required")
    if len(value) > 500:
        raise FilterError(path, "at most 500 values")
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise FilterError(path, "a non-empty string is required")
    if len(str(value)) > 200:
        raise FilterError(path, "at most 200 characters")
    return str(value)


def _convert(spec: FieldSpec, value: object, path: str) -> object:
    if spec.kind == "number":
        if isinstance(value, bool):
            raise FilterError(path, "a number is required")
        try:
            return float(Decimal(str(value)))
        except InvalidOperation as exc:
            raise FilterError(path, "a number is required") from exc
    if spec.kind == "date":
        if not isinstance(value, str):
            raise FilterError(path, "an ISO 8601 date or date-time is required")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise FilterError(path, "an ISO 8601 date or date-time is required") from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise FilterError(path, "true or false is required")
        return value
    text = _text(value, path)
    if spec.kind == "enum" and spec.choices is not None and text not in spec.choices:
        raise FilterError(path, f"must be one of {', '.join(sorted(spec.choices))}")
    return text
