"""Reports over 1,000,000 deals with stage histories: `funnel` and `managers` through the gateway.

Target (issue 5): under 100 ms each. Printed, never asserted. The read models
are loaded directly (PostgreSQL COPY when BENCH_DATABASE_URL or
TEST_DATABASE_URL names PostgreSQL, else SQLite in batches), then the reports
service runs in-process with a nats-server of its own and answers over HTTP,
asked directly and through the gateway (also in-process, logged in as the admin);
the same two queries run in DuckDB over the same rows for comparison.

    BENCH_REPORTS_DEALS=200000 .venv/bin/python bench/reports.py

Options (environment): `BENCH_REPORTS_DEALS` (1,000,000), `BENCH_REPORTS_SAMPLES`
(20 per report), `BENCH_REPORTS_BUDGET_SECONDS` (60: a slow report is sampled
until then), `BENCH_REPORTS_ONLY` (report names as printed, separated by `;`, e.g.
`managers, all time; funnel, a year (Moscow)`; default all), `BENCH_REPORTS_DUCKDB` (1; 0 skips DuckDB),
`BENCH_REPORTS_KEEP` (a folder: the loaded database, per size and database
kind, and the CSVs DuckDB reads are kept there and reused by the next run, which
only applies any newer migrations to it and analyzes; loading 1M deals takes
minutes), `BENCH_REPORTS_SCORING_SECONDS` (0: the service's scoring job is off;
N: it runs every N seconds while reports are timed, e.g. 1 for back to back, after
two runs timed beforehand: the first publishes every customer of a new database,
the second finds nothing changed).

Quiet machine (30 November 05:45, load 0.2-1.5), p50 (p95) ms through the
gateway, SQLite / PostgreSQL: managers all time 21 (25) / 23 (29), a year
55 (61) / 49 (52); funnel all time 19 (20) / 18 (19), a year 45 (53) / 44 (46);
target met for all six on both, also with the scoring job back to back (worst:
funnel a year on PostgreSQL, 49 (99)). Through the gateway adds 1-5 ms.

Earlier figures (shared 2-core machine), p50 (p95) ms through the service's
HTTP, SQLite / PostgreSQL; load average 6-7 / 3-6:

    managers, all time           28 (81)   /  27 (147)
    managers, last 30 days        9 (10)   /  10 (13)
    managers, a year (Moscow)    58 (81)   /  53 (60)      before: 1,110 / 686
    funnel, all time             22 (36)   /  20 (21)
    funnel, last 30 days          7 (13)   /   7 (9)
    funnel, a year (Moscow)     104 (193)  /  53 (62)      before: 2,310 / 646
    DuckDB, same raw rows: managers 494 (744), funnel 5,616 (6,858)

With the scoring job back to back (BENCH_REPORTS_SCORING_SECONDS=1) SQLite's
figures stay within the machine's noise; PostgreSQL's period reports are up to
about half slower while a run lasts (CPU shared on 2 cores, e.g. `managers` a
year 109 (137) against 71 (109) off). A scoring run at 1M with nothing changed:
2.4 s PostgreSQL, 4.4 s SQLite, was 11 s of the event loop
(services/reports/README.md, Performance).
"""

from __future__ import annotations

import asyncio
import csv
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import crm_reports
from crm_gateway.testing import gateway_settings, running_gateway
from crm_kernel.auth import Role
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations
from crm_kernel.testing import TEST_JWT_SECRET, NatsServer, issue_token, serve_in_process
from crm_reports.aggregates import (
    COUNTERS,
    CYCLES_KEY,
    FUNNEL_COUNTERS,
    FUNNEL_DAYS_COUNTERS,
    FUNNEL_DAYS_KEY,
    FUNNEL_KEY,
    FUNNEL_MONTHS_KEY,
    KEY,
    LENGTH_DAYS_KEY,
    LENGTH_MONTHS_KEY,
    LENGTHS_KEY,
    MIX_COUNTERS,
    MIX_KEY,
    MIX_MONTHS_KEY,
    MONTHS_KEY,
    TOTALS_KEY,
    amount_band,
    contribution,
)
from crm_reports.funnel.facts import stays_part
from crm_reports.main import create_app
from crm_reports.scoring.service import publish_changes
from crm_reports.settings import ReportsSettings

DEALS = int(os.environ.get("BENCH_REPORTS_DEALS", "1000000"))
SAMPLES = int(os.environ.get("BENCH_REPORTS_SAMPLES", "20"))
# A slow query is sampled until this many seconds have passed (at least once).
BUDGET = float(os.environ.get("BENCH_REPORTS_BUDGET_SECONDS", "60"))
# Report names as printed, separated by ";" (the names hold commas).
ONLY = {n.strip() for n in os.environ.get("BENCH_REPORTS_ONLY", "").split(";") if n.strip()}
DUCKDB = os.environ.get("BENCH_REPORTS_DUCKDB", "1") != "0"
KEEP = os.environ.get("BENCH_REPORTS_KEEP")
# Seconds between the service's scoring runs while reports are timed (0: the job is off).
SCORING = float(os.environ.get("BENCH_REPORTS_SCORING_SECONDS", "0"))
OWNERS = [str(uuid.UUID(int=i + 1)) for i in range(50)]
PIPELINE = str(uuid.UUID(int=10_000))
# id, name, position, probability, kind
STAGES = [
    (str(uuid.UUID(int=20_000 + i)), name, i, prob, kind)
    for i, (name, prob, kind) in enumerate(
        [
            ("New request", 10, "open"),
            ("First call", 25, "open"),
            ("Proposal sent", 50, "open"),
            ("Meeting", 75, "open"),
            ("Won", 100, "won"),
            ("Lost", 0, "lost"),
        ]
    )
]
SOURCES = ["web_form", "api", "import", "manual"]
START = datetime(2024, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 29, tzinfo=UTC)

Deal = dict[str, Any]


def _days(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() / 86400 if end is not None else None


Stay = tuple[str, str, datetime, datetime | None]  # deal, stage, entered, left


def generate(rng: random.Random) -> Iterator[tuple[Deal, list[Stay]]]:
    """Deals moving forward (with skips and a few steps back), then won, lost or still open."""
    span = (NOW - START).total_seconds() - 120 * 86400
    for i in range(DEALS):
        created = START + timedelta(seconds=rng.random() * span)
        deal_id = str(uuid.UUID(int=(1 << 64) + i))
        position, at = 0, created
        stays: list[Stay] = []
        while True:
            stay = timedelta(days=rng.expovariate(1 / 6))
            outcome = rng.random()
            if position >= 3 or outcome < 0.25:
                ending = rng.random()
                if ending < 0.3 or at + stay > NOW:
                    stays.append((deal_id, STAGES[position][0], at, None))
                    status = "open"
                    break
                final = 4 if ending < 0.65 else 5
                stays.append((deal_id, STAGES[position][0], at, at + stay))
                at += stay
                stays.append((deal_id, STAGES[final][0], at, None))
                status = STAGES[final][4]
                break
            stays.append((deal_id, STAGES[position][0], at, at + stay))
            at += stay
            step = -1 if position and outcome > 0.95 else (2 if outcome > 0.85 else 1)
            position = min(3, max(0, position + step))
        currency = "RUB" if rng.random() < 0.8 else rng.choice(["USD", "EUR"])
        amount = Decimal(rng.randrange(1_000, 5_000_000)) / 100
        deal: Deal = {
            "id": deal_id,
            "owner_id": rng.choice(OWNERS),
            "pipeline_id": PIPELINE,
            "stage_id": stays[-1][1],
            "status": status,
            "amount": amount,
            "currency": currency,
            "created_at": created,
            "closed_at": stays[-1][2] if status != "open" else None,
            "version": len(stays),
            "contact_id": str(uuid.UUID(int=(2 << 64) + rng.randrange(DEALS // 3 + 1))),
            "source": rng.choice(SOURCES),
            "source_campaign_id": None,
            "expected_close_date": (created + timedelta(days=rng.randrange(10, 120))).date(),
            "stage_entered_at": stays[-1][2],
            "amount_band": amount_band(amount, currency),
            "cycle_days": _days(created, stays[-1][2]) if status == "won" else None,
        }
        yield deal, stays


DEAL_COLUMNS = [
    "id",
    "owner_id",
    "pipeline_id",
    "stage_id",
    "status",
    "amount",
    "currency",
    "created_at",
    "closed_at",
    "version",
    "contact_id",
    "source",
    "source_campaign_id",
    "expected_close_date",
    "stage_entered_at",
    "amount_band",
    "cycle_days",
]
STAY_COLUMNS = ["deal_id", "stage_id", "pipeline_id", "entered_at", "left_at", "owner_id", "days"]
STAGE_LAYOUT = {s: (p, k) for s, _, p, _, k in STAGES}
# Every aggregate the service keeps: its name in `contribution`/`stays_part`, its
# table, key and counters (loaded straight, as the service would have summed them).
AGGREGATES = [
    ("days", "rm_deal_days", KEY, COUNTERS),
    ("mix", "rm_deal_mix", MIX_KEY, MIX_COUNTERS),
    ("totals", "rm_deal_totals", TOTALS_KEY, COUNTERS),
    ("funnel", "rm_funnel_facts", FUNNEL_KEY, FUNNEL_COUNTERS),
    ("lengths", "rm_stay_lengths", LENGTHS_KEY, ("stays",)),
    ("cycles", "rm_deal_cycles", CYCLES_KEY, ("won",)),
    ("funnel_days", "rm_funnel_days", FUNNEL_DAYS_KEY, FUNNEL_DAYS_COUNTERS),
    ("months", "rm_deal_months", MONTHS_KEY, COUNTERS),
    ("mix_months", "rm_deal_mix_months", MIX_MONTHS_KEY, MIX_COUNTERS),
    ("funnel_months", "rm_funnel_months", FUNNEL_MONTHS_KEY, FUNNEL_DAYS_COUNTERS),
    ("length_days", "rm_stay_length_days", LENGTH_DAYS_KEY, ("stays",)),
    ("length_months", "rm_stay_length_months", LENGTH_MONTHS_KEY, ("stays",)),
]


class Rows:
    """The generated read-model rows: deals, stays, the deal aggregates and the funnel facts."""

    def __init__(self) -> None:
        self.deals: list[tuple[Any, ...]] = []
        self.stays: list[tuple[Any, ...]] = []
        sums: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = defaultdict(dict)
        for deal, stays in generate(random.Random(1)):
            self.deals.append(tuple(deal[c] for c in DEAL_COLUMNS))
            owner = deal["owner_id"]
            rows = [(d, s, PIPELINE, e, left, owner, _days(e, left)) for d, s, e, left in stays]
            self.stays += rows
            named = [dict(zip(STAY_COLUMNS, row, strict=True)) for row in rows]
            facts = stays_part(owner, deal["status"], named, STAGE_LAYOUT, 1)
            for target, part in (contribution(deal, 1) | facts).items():
                row = sums[target]
                for name, value in part.items():
                    row[name] = row.get(name, 0) + value
        by_name: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = defaultdict(list)
        for (name, key), row in sums.items():
            by_name[name].append((key, row))
        # table -> (columns, rows)
        self.aggregates: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {
            table: (
                [*key_columns, *counters],
                [(*key, *(row.get(c, 0) for c in counters)) for key, row in by_name[name]],
            )
            for name, table, key_columns, counters in AGGREGATES
        }


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLAlchemy's SQLite storage format, so bound parameters compare as text correctly.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def load_sqlite(path: str, rows: Rows) -> None:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    stages = [(s, PIPELINE, n, p, prob, k, 1) for s, n, p, prob, k in STAGES]
    tables = [
        (
            "rm_stages",
            ["id", "pipeline_id", "name", "position", "probability", "kind", "version"],
            stages,
        ),
        ("rm_deals", DEAL_COLUMNS, rows.deals),
        ("rm_stage_stays", STAY_COLUMNS, rows.stays),
        *((table, columns, data) for table, (columns, data) in rows.aggregates.items()),
    ]
    connection.execute("PRAGMA cache_size=-1000000")  # 1 GB: index builds sort in memory
    for table, columns, data in tables:
        # Secondary indexes are built once after the rows, not row by row (minutes faster).
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table,),
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f"DROP INDEX {name}")
        statement = (
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - our own names
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        for start in range(0, len(data), 100_000):
            batch = [tuple(_sqlite_value(v) for v in row) for row in data[start : start + 100_000]]
            connection.executemany(statement, batch)
        for _, sql in indexes:
            connection.execute(sql)
        connection.commit()
    connection.execute("ANALYZE")
    connection.close()


async def load_postgres(url: str, rows: Rows) -> None:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(plain)
    try:
        stages = [(s, PIPELINE, n, p, Decimal(prob), k, 1) for s, n, p, prob, k in STAGES]
        await connection.copy_records_to_table(
            "rm_stages",
            records=stages,
            columns=["id", "pipeline_id", "name", "position", "probability", "kind", "version"],
        )
        await connection.copy_records_to_table("rm_deals", records=rows.deals, columns=DEAL_COLUMNS)
        await connection.copy_records_to_table(
            "rm_stage_stays", records=rows.stays, columns=STAY_COLUMNS
        )
        for table, (columns, data) in rows.aggregates.items():
            await connection.copy_records_to_table(table, records=data, columns=columns)
        # As autovacuum leaves a settled table: statistics and the visibility map (index-only scans).
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def postgres_database(base: str, name: str) -> str:
    """A fresh database `name` on the server of `base` (an older one of that name is dropped)."""
    url = make_url(base).set(drivername="postgresql+asyncpg").set(database=name)
    await drop_postgres(url.render_as_string(hide_password=False))
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return url.render_as_string(hide_password=False)


async def analyze(db_url: str, postgres: bool, sqlite_path: Path) -> None:
    """Statistics for what a migration added or rebuilt, as after a fresh load."""
    if postgres:
        plain = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(plain)
        try:
            await connection.execute("VACUUM ANALYZE")
        finally:
            await connection.close()
    else:
        with sqlite3.connect(sqlite_path) as connection:
            connection.execute("ANALYZE")


async def drop_postgres(url: str) -> None:
    target = make_url(url)
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    await admin.dispose()


async def sample(call: Callable[[], Awaitable[Any]]) -> tuple[float, float, int]:
    """p50 and p95 in ms after one warm-up call; slow calls are sampled within the budget."""
    await call()
    times: list[float] = []
    deadline = time.monotonic() + BUDGET
    while len(times) < SAMPLES and (not times or time.monotonic() < deadline):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, len(times)


async def report(name: str, call: Callable[[], Awaitable[Any]]) -> None:
    if ONLY and name not in ONLY:
        return
    p50, p95, n = await sample(call)
    verdict = "met" if p95 < 100 else "NOT met"
    print(f"  {name:<44} p50 {p50:9.1f} ms  p95 {p95:9.1f} ms  (n={n}; target 100 ms {verdict})")


async def first_scores(settings: ReportsSettings) -> None:
    """Score the base as the job would, so the runs timed with reports are the usual ones.

    A first run publishes every customer; its outbox rows are dropped (the relay
    sending them is not what this measures). Then a run with nothing changed.
    """
    db = Database(settings.database_url)
    try:
        for run in ("a scoring run", "a scoring run with nothing changed"):
            started = time.perf_counter()
            published = await publish_changes(db, settings, f"bench-{uuid.uuid4()}")
            print(f"{run}: {published:,} published in {time.perf_counter() - started:.1f}s")
            async with db.transaction() as session:
                await session.execute(text("DELETE FROM outbox"))
    finally:
        await db.dispose()


async def timed_reports(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """The six timed reports: managers and funnel over all time, a month and a year."""
    month = {"from": (NOW - timedelta(days=30)).isoformat(), "to": NOW.isoformat()}
    # A year to midnight in Moscow: whole UTC days plus partial days at both edges.
    moscow = timezone(timedelta(hours=3))
    end = NOW.astimezone(moscow).replace(hour=0)
    year = {"from": (end - timedelta(days=365)).isoformat(), "to": end.isoformat()}

    def call(path: str, **params: Any) -> Callable[[], Awaitable[Any]]:
        async def go() -> None:
            response = await client.get(path, params=params, headers=headers)
            response.raise_for_status()

        return go

    funnel = {"pipeline_id": PIPELINE}
    await report("managers, all time", call("/reports/managers"))
    await report("managers, last 30 days", call("/reports/managers", **month))
    await report("managers, a year (Moscow)", call("/reports/managers", **year))
    await report("funnel, all time", call("/reports/funnel", **funnel))
    await report("funnel, last 30 days", call("/reports/funnel", **funnel, **month))
    await report("funnel, a year (Moscow)", call("/reports/funnel", **funnel, **year))


async def through_api(db_url: str, tmp: Path) -> None:
    nats = NatsServer(tmp / "nats")
    (tmp / "nats").mkdir()
    nats.start()
    try:
        settings = ReportsSettings(
            DATABASE_URL=db_url,
            NATS_URL=nats.url,
            CRM_JWT_SECRET=TEST_JWT_SECRET,
            CRM_DATA_DIR=tmp,
            REPORTS_SCORING_INTERVAL_SECONDS=SCORING,
        )
        if SCORING:
            await first_scores(settings)
        async with serve_in_process(create_app(settings)) as base_url:
            direct = {"Authorization": f"Bearer {issue_token(Role.ADMIN)}"}
            async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=600) as client:
                print("through the reports service's own HTTP API:")
                await timed_reports(client, direct)
            # As a user's client asks: the gateway (its own database, in this process
            # and event loop too) checks the admin's session and forwards to reports.
            gateway = gateway_settings(
                db_url=f"sqlite+aiosqlite:///{tmp / 'gateway.db'}",
                nats_url=nats.url,
                data_dir=str(tmp),
                REPORTS_URL=base_url,
                UPSTREAM_TIMEOUT=600,
            )
            async with running_gateway(gateway) as api:
                api.http.timeout = httpx.Timeout(600)
                admin = await api.admin_headers()
                api.http.base_url = httpx.URL(f"{api.http.base_url}/api/v1")
                print("through the gateway:")
                await timed_reports(api.http, admin)
    finally:
        nats.stop()


DUCK_FUNNEL = """
WITH stays AS (
  SELECT s.deal_id, s.stage_id, s.entered_at, s.left_at, d.status,
         max(CASE WHEN st.kind <> 'lost' THEN st.position END) OVER (
           PARTITION BY s.deal_id ORDER BY s.entered_at
           ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS later_position,
         st.position
  FROM stays s JOIN deals d ON d.id = s.deal_id JOIN stages st ON st.id = s.stage_id
)
SELECT stage_id,
       count(DISTINCT deal_id) AS entered,
       count(DISTINCT deal_id) FILTER (WHERE left_at IS NOT NULL) AS moved_on,
       count(DISTINCT deal_id) FILTER (WHERE status = 'won') AS won,
       count(DISTINCT deal_id) FILTER (WHERE later_position > position) AS onward,
       avg(epoch(left_at - entered_at) / 86400.0) AS avg_days,
       median(epoch(left_at - entered_at) / 86400.0) AS median_days
FROM stays GROUP BY stage_id ORDER BY stage_id
"""
DUCK_MANAGERS = """
SELECT owner_id,
       count(*) AS created,
       count(*) FILTER (WHERE status = 'won') AS won,
       count(*) FILTER (WHERE status = 'lost') AS lost,
       sum(amount) FILTER (WHERE status = 'won' AND currency = 'RUB') AS revenue_rub,
       quantile_cont(epoch(closed_at - created_at) / 86400.0, 0.5)
         FILTER (WHERE status = 'won') AS median_cycle
FROM deals GROUP BY owner_id ORDER BY owner_id
"""


def write_csv(rows: Rows, deals: Path, stays: Path) -> None:
    """The deals and stays as CSV, for DuckDB (written next to a kept database)."""
    for path, columns, data in (
        (deals, DEAL_COLUMNS, rows.deals),
        (stays, STAY_COLUMNS, rows.stays),
    ):
        with open(path, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows(data)


def in_duckdb(deals: Path, stays: Path) -> None:
    """The same deals and stays in DuckDB (loaded from CSV), the same two queries."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE deals AS SELECT * FROM read_csv_auto('{deals}')")  # noqa: S608
    con.execute(f"CREATE TABLE stays AS SELECT * FROM read_csv_auto('{stays}')")  # noqa: S608
    con.execute("CREATE TABLE stages (id VARCHAR, position INTEGER, kind VARCHAR)")
    con.executemany("INSERT INTO stages VALUES (?, ?, ?)", [(s, p, k) for s, _, p, _, k in STAGES])

    async def run(query: str) -> None:
        con.execute(query).fetchall()

    async def both() -> None:
        await report("managers, all time", lambda: run(DUCK_MANAGERS))
        await report("funnel, all time", lambda: run(DUCK_FUNNEL))

    print("the same queries in DuckDB (in-process, same rows, raw):")
    asyncio.run(both())


async def main_async(folder: Path, tmp: Path) -> tuple[Path, Path]:
    """Load (or, with BENCH_REPORTS_KEEP, reuse) the read models and time the API."""
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL", "")
    postgres = base.startswith("postgresql")
    ready = folder / f"ready-{'postgresql' if postgres else 'sqlite'}-{DEALS}"
    csvs = folder / f"deals-{DEALS}.csv", folder / f"stays-{DEALS}.csv"
    name = f"bench_reports_{DEALS}" if KEEP else f"bench_reports_{uuid.uuid4().hex[:8]}"
    sqlite_path = folder / f"reports-{DEALS}.db"
    if postgres:
        plain = make_url(base).set(drivername="postgresql+asyncpg", database=name)
        db_url = plain.render_as_string(hide_password=False)
    else:
        db_url = f"sqlite+aiosqlite:///{sqlite_path}"
    try:
        if ready.exists():
            print(f"reusing the database kept in {folder} ({DEALS:,} deals)")
            db = Database(db_url)
            await migrate(db, service_migrations(crm_reports.__file__))  # newer migrations only
            await db.dispose()
            await analyze(db_url, postgres, sqlite_path)
        else:
            started = time.perf_counter()
            rows = Rows()
            print(
                f"generated {len(rows.deals):,} deals, {len(rows.stays):,} stage stays, "
                f"{len(rows.aggregates['rm_deal_days'][1]):,} day aggregates in {time.perf_counter() - started:.1f}s"
            )
            if postgres:
                await postgres_database(base, name)
            else:
                sqlite_path.unlink(missing_ok=True)
            db = Database(db_url)
            await migrate(db, service_migrations(crm_reports.__file__))
            await db.dispose()
            started = time.perf_counter()
            if postgres:
                await load_postgres(db_url, rows)
            else:
                load_sqlite(str(sqlite_path), rows)
            kind = "PostgreSQL COPY" if postgres else "SQLite batches"
            print(f"loaded into the read models ({kind}) in {time.perf_counter() - started:.1f}s")
            if DUCKDB or KEEP:
                write_csv(rows, *csvs)
            del rows
            if KEEP:
                ready.touch()
        await through_api(db_url, tmp)
    finally:
        if postgres and not KEEP:
            await drop_postgres(db_url)
    return csvs


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        keep = Path(KEEP) if KEEP else tmp
        keep.mkdir(parents=True, exist_ok=True)
        csvs = asyncio.run(main_async(keep, tmp))
        if DUCKDB:
            in_duckdb(*csvs)


if __name__ == "__main__":
    main()
