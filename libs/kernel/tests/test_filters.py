"""The filter language: the same JSON selects the same rows on SQLite and PostgreSQL,
and anything outside the whitelist is refused with the path of the mistake."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import JSON, Column, MetaData, String, Table, insert, select

from crm_kernel.db import Database, UtcDateTime
from crm_kernel.filters import FieldSpec, FilterError, compile_filter, json_key, json_list_has

OpenDb = Callable[..., Awaitable[Database]]

toy = MetaData()
people = Table(
    "people",
    toy,
    Column("id", String(10), primary_key=True),
    Column("name", String(50)),
    Column("stage", String(20)),
    Column("tags", JSON, nullable=False),
    Column("custom", JSON, nullable=False),
    Column("created_at", UtcDateTime()),
)

ROWS = [
    ("a", "Анна Петрова", "commitment", ["vip", "moscow"], {"budget": 5000, "vip": True}),
    ("b", "Boris 100%_off", "awareness", ["moscow"], {"budget": 100}),
    ("c", "Carl", None, [], {}),
]


def fields(db: Database) -> dict[str, FieldSpec]:
    return {
        "name": FieldSpec("text", people.c.name),
        "lifecycle_stage": FieldSpec(
            "enum", people.c.stage, choices=frozenset({"awareness", "commitment"})
        ),
        "tags": FieldSpec("list", has=json_list_has(people.c.tags, sqlite=db.is_sqlite)),
        "created_at": FieldSpec("date", people.c.created_at),
    }


def custom(db: Database) -> Callable[[str], FieldSpec | None]:
    kinds: dict[str, Any] = {"budget": "number", "vip": "bool"}

    def resolve(name: str) -> FieldSpec | None:
        key = name.removeprefix("custom.")
        if not name.startswith("custom.") or key not in kinds:
            return None
        return FieldSpec(
            kinds[key], json_key(people.c.custom, key, kinds[key], sqlite=db.is_sqlite)
        )

    return resolve


async def matching(db: Database, raw: object) -> set[str]:
    where = compile_filter(raw, fields(db), custom(db))
    async with db.session() as session:
        return set((await session.execute(select(people.c.id).where(where))).scalars())


@pytest.fixture
async def db(open_db: OpenDb) -> Database:
    database = await open_db(toy)
    async with database.transaction() as session:
        for i, (key, name, stage, tags, extra) in enumerate(ROWS):
            created = datetime(2026, 1, 1 + i, tzinfo=UTC)
            await session.execute(
                insert(people).values(
                    id=key, name=name, stage=stage, tags=tags, custom=extra, created_at=created
                )
            )
    return database


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"field": "tags", "op": "has", "value": "vip"}, {"a"}),
        ({"field": "tags", "op": "has_any", "value": ["vip", "moscow"]}, {"a", "b"}),
        ({"field": "tags", "op": "has_all", "value": ["vip", "moscow"]}, {"a"}),
        ({"field": "tags", "op": "has_none", "value": ["moscow"]}, {"c"}),
        ({"field": "name", "op": "contains", "value": "анна"}, {"a"}),
        ({"field": "name", "op": "contains", "value": "%_"}, {"b"}),
        ({"field": "lifecycle_stage", "op": "ne", "value": "awareness"}, {"a", "c"}),
        ({"field": "lifecycle_stage", "op": "is_null", "value": True}, {"c"}),
        ({"field": "custom.budget", "op": "gte", "value": 1000}, {"a"}),
        ({"field": "custom.vip", "op": "eq", "value": True}, {"a"}),
        ({"field": "created_at", "op": "gt", "value": "2026-01-01T12:00:00+00:00"}, {"b", "c"}),
        (
            {
                "any": [
                    {"all": [{"field": "tags", "op": "has", "value": "moscow"}]},
                    {"not": {"field": "name", "op": "starts_with", "value": "c"}},
                ]
            },
            {"a", "b"},
        ),
        ({"all": []}, {"a", "b", "c"}),
    ],
)
async def test_a_filter_selects_exactly_its_rows(
    db: Database, raw: object, expected: set[str]
) -> None:
    assert await matching(db, raw) == expected


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"field": "password", "op": "eq", "value": "x"}, "filter.field"),
        ({"field": "custom.unknown", "op": "eq", "value": "x"}, "filter.field"),
        ({"field": "name", "op": "gt", "value": "x"}, "filter.op"),
        ({"field": "lifecycle_stage", "op": "eq", "value": "nonsense"}, "filter.value"),
        ({"field": "custom.budget", "op": "gt", "value": "lots"}, "filter.value"),
        (
            {"all": [{"field": "created_at", "op": "lt", "value": "yesterday"}]},
            "filter.all.0.value",
        ),
        ({"field": "name", "op": "eq", "value": "x", "sql": "1=1"}, "filter"),
        ({"all": [], "any": []}, "filter"),
        (
            {
                "not": {
                    "not": {"not": {"not": {"not": {"field": "name", "op": "eq", "value": "x"}}}}
                }
            },
            "filter.not.not.not.not.not",
        ),
    ],
)
def test_anything_outside_the_whitelist_is_refused_with_its_path(raw: object, path: str) -> None:
    with pytest.raises(FilterError) as caught:
        db = Database("sqlite+aiosqlite://")
        compile_filter(raw, fields(db), custom(db))
    assert caught.value.path.startswith(path)
