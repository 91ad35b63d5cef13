"""Contact search at scale: p50/p95 of `GET /contacts?q=` through the service.

Target (issue 3 item 5): p95 under 50 ms at 1,000,000 contacts. Printed, never
asserted. The contacts are loaded straight into the tables (and the search
index), bypassing the API: on SQLite `executemany` in batches of 20,000 rows
(the c0004 triggers fill the FTS5 index), on PostgreSQL `COPY` in batches of
100,000 (the generated tsvector column fills itself; its GIN index is rebuilt
once after the load). Then the real service app runs under uvicorn in this
process (`crm_kernel.testing.serve_in_process`, with a nats-server of its own)
and is asked over HTTP with httpx, one request at a time, by an admin (every
contact) and by sales reps (their own, ~2% of the base). The same searches are
then timed in the query layer (`list_contacts` called directly: no HTTP, no
read metering, no serialisation), which is the database's share of the time.

Settings (environment):
  BENCH_CONTACTS        contacts to load (default 1,000,000; e.g. 50000 for a quick run)
  BENCH_SEARCHES        timed requests (default 400)
  BENCH_DATABASE_URL    a PostgreSQL server URL (postgresql+asyncpg://...): a fresh
                        database is created on it and dropped afterwards.
                        Default: SQLite in a temporary folder.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

import crm_contacts
from crm_contacts.contacts.service import list_contacts
from crm_contacts.main import create_app
from crm_contacts.settings import ContactsSettings
from crm_kernel.auth import Principal, Role
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations
from crm_kernel.testing import TEST_JWT_SECRET, NatsServer, issue_token, serve_in_process

SYLLABLES = ["ко", "ва", "ле", "ни", "ро", "ма", "ти", "са", "бе", "го", "ду", "ше", "ла", "пе"]  # noqa: RUF001
SUFFIXES = ["ов", "ев", "ин", "ский"]
LATIN = {"к": "k", "о": "o", "в": "v", "а": "a", "л": "l", "е": "e", "н": "n", "и": "i", "р": "r",  # noqa: RUF001
         "м": "m", "т": "t", "с": "s", "б": "b", "г": "g", "д": "d", "у": "u", "ш": "sh", "п": "p",  # noqa: RUF001
         "й": "y"}  # fmt: skip
FIRST_NAMES = ["Анна", "Иван", "Мария", "Пётр", "Ольга", "Сергей", "Елена", "Дмитрий",
               "John", "Mary", "Alex", "Kate", "Nina", "Oleg", "Pavel", "Irina"]  # fmt: skip
OWNERS = [str(uuid.UUID(int=i + 1)) for i in range(50)]
COMPANIES_PER_CONTACTS = 20
CONTACT_COLUMNS = (
    "id", "first_name", "last_name", "email", "phone", "company_id", "position", "owner_id",
    "tags", "lifecycle_stage", "consent_email", "consent_sms", "custom", "version",
    "created_at", "updated_at",
)  # fmt: skip


def surnames() -> list[str]:
    return ["".join(p).capitalize() + s for p in itertools.product(SYLLABLES, repeat=3)
            for s in SUFFIXES]  # fmt: skip


def latin(word: str) -> str:
    return "".join(LATIN.get(ch, ch) for ch in word.lower())


def company_rows(count: int, started: datetime) -> list[dict[str, Any]]:
    names = surnames()
    return [
        {
            "id": str(uuid.UUID(int=10**12 + i)),
            "name": f"Компания {latin(names[i % 1000]).capitalize()} {i}",
            "domain": f"firm{i}.example.com",
            "owner_id": OWNERS[i % len(OWNERS)],
            "created_at": started,
        }
        for i in range(count)
    ]


def contact_rows(count: int, companies: int, started: datetime) -> Iterator[tuple[Any, ...]]:
    """Deterministic synthetic people: ~11,000 surnames, unique e-mails and phones."""
    names = surnames()
    for i in range(count):
        last = names[(i * 7919) % len(names)]
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        at = started + timedelta(seconds=i)
        yield (
            str(uuid.UUID(int=i + 1, version=4)),
            first,
            last,
            f"{latin(first)}.{latin(last)}.{i}@mail{i % 97}.example.com",
            f"+79{i:09d}",
            str(uuid.UUID(int=10**12 + i % companies)) if i % 3 else None,
            None,
            OWNERS[i % len(OWNERS)],
            '["vip"]' if i % 10 == 0 else "[]",
            "awareness",
            False,
            False,
            "{}",
            1,
            at,
            at,
        )


async def load_sqlite(url: str, count: int) -> None:
    import sqlite3

    path = make_url(url).database
    assert path
    started = datetime(2025, 1, 1, tzinfo=UTC)
    companies = max(1, count // COMPANIES_PER_CONTACTS)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # a benchmark load: durability does not matter
    with conn:
        conn.executemany(
            "INSERT INTO companies (id, name, domain, phone, owner_id, tags, custom, version,"
            " created_at, updated_at) VALUES (?, ?, ?, NULL, ?, '[]', '{}', 1, ?, ?)",
            [(c["id"], c["name"], c["domain"], c["owner_id"], _sqlite_time(started),
              _sqlite_time(started)) for c in company_rows(companies, started)],
        )  # fmt: skip
    # Per-row triggers keep the FTS index in step with single writes; for a bulk load
    # they go, and the index is filled in one pass by c0004's own statements.
    search = _search_migration()
    insert_trigger = next(sql for sql in search._SQLITE if "contacts_search_insert" in sql)
    conn.execute("DROP TRIGGER contacts_search_insert")
    placeholders = ", ".join("?" for _ in CONTACT_COLUMNS)
    statement = f"INSERT INTO contacts ({', '.join(CONTACT_COLUMNS)}) VALUES ({placeholders})"  # noqa: S608
    rows = contact_rows(count, companies, started)
    while batch := list(itertools.islice(rows, 20_000)):
        with conn:
            conn.executemany(
                statement, [(*r[:14], _sqlite_time(r[14]), _sqlite_time(r[15])) for r in batch]
            )
    with conn:
        for sql in search._SQLITE:
            if sql.startswith(("INSERT INTO contact_search_keys", "INSERT INTO contacts_fts")):
                conn.execute(sql)
        conn.execute(insert_trigger)
    conn.execute("ANALYZE")
    conn.close()


def _search_migration() -> Any:
    """Migration c0004 (the search index), whose statements fill the index for existing rows."""
    path = service_migrations(crm_contacts.__file__) / "versions" / "c0004_search.py"
    spec = importlib.util.spec_from_file_location("c0004_search", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sqlite_time(moment: datetime) -> str:
    # As SQLAlchemy's SQLite DateTime stores it (UtcDateTime drops the zone).
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


async def load_postgresql(url: str, count: int) -> None:
    import asyncpg

    started = datetime(2025, 1, 1, tzinfo=UTC)
    companies = max(1, count // COMPANIES_PER_CONTACTS)
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.copy_records_to_table(
            "companies",
            columns=["id", "name", "domain", "owner_id", "tags", "custom", "version",
                     "created_at", "updated_at"],
            records=[(c["id"], c["name"], c["domain"], c["owner_id"], "[]", "{}", 1, started,
                      started) for c in company_rows(companies, started)],
        )  # fmt: skip
        await conn.execute("DROP INDEX IF EXISTS ix_search_contacts")
        rows = contact_rows(count, companies, started)
        while batch := list(itertools.islice(rows, 100_000)):
            await conn.copy_records_to_table("contacts", columns=CONTACT_COLUMNS, records=batch)
        await conn.execute("CREATE INDEX ix_search_contacts ON contacts USING gin (search_vector)")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def queries(count: int) -> list[tuple[str, str]]:
    """(kind, q) pairs people type: names, e-mails, phones in any format, companies."""
    rng = random.Random(7)
    names = surnames()
    picked: list[tuple[str, str]] = []
    for _ in range(count):
        i = rng.randrange(count_loaded)
        last = names[(i * 7919) % len(names)]
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        digits = f"9{i:09d}"
        kind = rng.choice(
            ["surname", "first+surname", "surname prefix", "email", "email part", "phone +7",
             "phone 8 (...)", "phone digits", "company", "no match"]
        )  # fmt: skip
        q = {
            "surname": last,
            "first+surname": f"{first} {last.lower()}",
            "surname prefix": last[:5],
            "email": f"{latin(first)}.{latin(last)}.{i}@mail{i % 97}.example.com",
            "email part": f"{latin(last)}",
            "phone +7": f"+7 {digits[:3]} {digits[3:]}",
            "phone 8 (...)": f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
            "phone digits": digits,
            "company": f"firm{i % max(1, count_loaded // COMPANIES_PER_CONTACTS)}",
            "no match": "Зюзюкин",
        }[kind]
        picked.append((kind, q))
    return picked


count_loaded = 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


async def measure(url: str, nats_url: str, searches: int) -> None:
    # Reads are metered as in production; only the reps' 429 threshold is lifted, since
    # the benchmark's reps read far more distinct contacts an hour than a person does.
    settings = ContactsSettings(
        DATABASE_URL=url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_READ_LIMIT_SALES_REP=0,
    )
    admin = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}
    reps = [
        {"Authorization": f"Bearer {issue_token(Role.SALES_REP, owner)}"} for owner in OWNERS[:5]
    ]
    async with serve_in_process(create_app(settings)) as base:
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=60) as client:
            plan = queries(searches)
            for _, q in plan[:20]:  # warm-up: caches, connections, query plans
                await client.get("/contacts", params={"q": q}, headers=admin)
            timings: dict[str, list[float]] = defaultdict(list)
            for n, (kind, q) in enumerate(plan):
                headers = admin if n % 2 == 0 else reps[n % len(reps)]
                start = time.perf_counter()
                response = await client.get("/contacts", params={"q": q}, headers=headers)
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{q!r}: {response.status_code} {response.text[:200]}")
                timings[kind].append(elapsed)
                timings["all"].append(elapsed)
    report(f"search over {count_loaded:,} contacts through HTTP", timings)
    report("the same searches in the query layer (list_contacts: no HTTP, no metering)",
           await query_layer(url, plan), target=False)  # fmt: skip


async def query_layer(url: str, plan: list[tuple[str, str]]) -> dict[str, list[float]]:
    """The database's share: list_contacts called directly, same queries and callers."""
    admin = Principal(user_id=str(uuid.UUID(int=10**6)), role=Role.ADMIN)
    reps = [Principal(user_id=owner, role=Role.SALES_REP) for owner in OWNERS[:5]]
    db = Database(url)
    timings: dict[str, list[float]] = defaultdict(list)
    try:
        for n, (kind, q) in enumerate(plan):
            principal = admin if n % 2 == 0 else reps[n % len(reps)]
            start = time.perf_counter()
            await list_contacts(db=db, principal=principal, limit=50, cursor=None, sort=None, q=q)
            elapsed = (time.perf_counter() - start) * 1000
            timings[kind].append(elapsed)
            timings["all"].append(elapsed)
    finally:
        await db.dispose()
    return timings


def report(title: str, timings: dict[str, list[float]], *, target: bool = True) -> None:
    every = timings.pop("all")
    p95 = percentile(every, 0.95)
    verdict = f" (target p95 50 ms -> {'met' if p95 < 50 else 'NOT met'})" if target else ""
    print(
        f"{title}, {len(every)} requests: "
        f"p50 {statistics.median(every):.1f} ms, p95 {p95:.1f} ms, max {max(every):.1f} ms"
        + verdict
    )
    for kind, values in sorted(timings.items()):
        print(
            f"  {kind:<15} n={len(values):<4} p50 {statistics.median(values):6.1f} ms"
            f"  p95 {percentile(values, 0.95):6.1f} ms"
        )


async def run(url: str, nats_url: str, contacts: int, searches: int) -> None:
    global count_loaded
    count_loaded = contacts
    db = Database(url)
    await migrate(db, service_migrations(crm_contacts.__file__))
    await db.dispose()
    start = time.perf_counter()
    if make_url(url).get_backend_name() == "sqlite":
        await load_sqlite(url, contacts)
    else:
        await load_postgresql(url, contacts)
    elapsed = time.perf_counter() - start
    print(
        f"loaded {contacts:,} contacts in {elapsed:.1f}s ({contacts / elapsed:,.0f}/s)", flush=True
    )
    await measure(url, nats_url, searches)


async def fresh_postgresql(server_url: str) -> tuple[str, str]:
    base = make_url(server_url).set(drivername="postgresql+asyncpg")
    name = f"bench_contacts_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


async def drop_postgresql(server_url: str, name: str) -> None:
    admin = create_async_engine(
        make_url(server_url).set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def main() -> int:
    contacts = int(os.environ.get("BENCH_CONTACTS", "1000000"))
    searches = int(os.environ.get("BENCH_SEARCHES", "400"))
    server_url = os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(Path(tmp) / "nats")
        nats.start()
        try:
            if server_url:
                url, name = asyncio.run(fresh_postgresql(server_url))
                print(f"contacts search benchmark on PostgreSQL ({name})", flush=True)
                try:
                    asyncio.run(run(url, nats.url, contacts, searches))
                finally:
                    asyncio.run(drop_postgresql(server_url, name))
            else:
                print("contacts search benchmark on SQLite", flush=True)
                asyncio.run(
                    run(f"sqlite+aiosqlite:///{tmp}/bench.db", nats.url, contacts, searches)
                )
        finally:
            nats.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
