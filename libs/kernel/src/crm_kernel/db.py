"""Async SQLAlchemy engine and sessions: SQLite (WAL) by default, PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Select, String, Table, event, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

# A column in a query: a Core column or an ORM attribute.
SqlColumn = ColumnElement[Any] | QueryableAttribute[Any]

# Set on a session by code that wrote outbox rows, so the relay is woken at commit.
OUTBOX_WRITTEN = "crm_outbox_written"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite stores no zone and gives back naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers and the writer work at once; FULL makes a commit survive
    # a power cut, not only a process crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 64 MiB of page cache per connection (default 2 MiB), taken only as pages are read:
    # reports and search at a million rows read tens of MB of index pages per request.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()
    # SQLite's lower() folds ASCII only; `casefold()` below needs Cyrillic too.
    dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class casefold(FunctionElement[str]):
    """lower() that folds every script, on SQLite as on PostgreSQL."""

    type = String()
    inherit_cache = True


@compiles(casefold)
def _casefold_default(element: casefold, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(casefold, "sqlite")
def _casefold_sqlite(element: casefold, compiler: Any, **kw: Any) -> str:
    return f"unicode_lower({compiler.process(element.clauses, **kw)})"


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a URL, with SQLite's file created and tuned."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Database:
    """A service's database: one engine, sessions, and a transaction per use case."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._on_outbox_commit: list[Callable[[], None]] = []

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def on_outbox_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every commit that wrote outbox rows (wakes the relay)."""
        self._on_outbox_commit.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One use case: everything done in the block commits together, or nothing does."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop(OUTBOX_WRITTEN, False):
                for callback in self._on_outbox_commit:
                    callback()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (no transaction is committed)."""
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def picked_once(query: Select[Any]) -> Select[Any]:
    """`query`'s rows for `column.in_(...)`, computed once before the outer statement runs.

    For claims: `UPDATE ... WHERE id IN (picked_once(SELECT id ... LIMIT n FOR
    UPDATE SKIP LOCKED))`. As a plain subquery PostgreSQL is free to run (and
    lock) it again for rows of the outer statement: seen with a sudden backlog of
    20,000 notifications, one claim ran for over 15 s at full CPU (the plan
    explained afterwards, with fresh statistics, looked fine; with the CTE the
    stall is gone). A MATERIALIZED CTE is evaluated exactly once; SQLite runs the
    subquery once anyway (and knows the keyword only since 3.35, so it is left
    out there).
    """
    due = query.cte("picked").prefix_with("MATERIALIZED", dialect="postgresql")
    return select(*due.c)


def _dialect_insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL alike)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


async def insert_ignoring_duplicates(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows in one statement, skipping those whose key already exists (idempotent writes)."""
    if not rows:
        return
    await session.execute(_dialect_insert(session)(table).on_conflict_do_nothing(), list(rows))


async def upsert_if_newer(
    session: AsyncSession, table: Table, row: Mapping[str, Any], *, key: Sequence[str], version: str
) -> bool:
    """Insert the row, or overwrite the stored one only if `row[version]` is newer.

    One statement, so two replicas applying versions 2 and 3 at once end with 3
    whatever the order. Returns whether the row was written.
    """
    statement = _dialect_insert(session)(table).values(**row)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in key],
        set_={c: statement.excluded[c] for c in row if c not in key},
        where=table.c[version] < statement.excluded[version],
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def upsert(
    session: AsyncSession,
    table: Table,
    row: Mapping[str, Any],
    *,
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert the row, or set the `update` columns of the stored one with the same key."""
    statement = _dialect_insert(session)(table).values(**row)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c[k] for k in key],
            set_={c: statement.excluded[c] for c in update},
        )
    )
