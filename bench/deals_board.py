"""The deals board with 100,000 open deals: p50/p95 of the whole first page, admin and sales rep.

Target (issue 4): p95 under 100 ms for the first page of every stage (the
whole board: every column's first 20 cards, counts and per-currency totals).
Calls the board use case directly on a fresh database: PostgreSQL when
BENCH_DATABASE_URL is set (a server URL; a scratch database is created and
dropped), else SQLite in a temporary folder. Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

import crm_deals
from crm_deals.board.service import BoardFilter, board
from crm_deals.board.totals import rebuild_totals
from crm_deals.deals.models import Deal
from crm_deals.models import load_all_models
from crm_deals.pipelines.defaults import DEFAULT_PIPELINE_ID
from crm_deals.pipelines.service import ensure_default_pipeline, live_stages
from crm_kernel.auth import Principal, Role
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.migrate import migrate, service_migrations

DEALS = int(os.environ.get("BENCH_DEALS", "100000"))
OWNERS = 50
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "60"))
CURRENCIES = ("RUB", "RUB", "RUB", "EUR", "USD")


async def seed(db: Database) -> str:
    """DEALS open deals spread over the default pipeline's open stages; returns one rep's id."""
    owners = [str(uuid.uuid4()) for _ in range(OWNERS)]
    async with db.session() as session:
        stages = [s for s in await live_stages(session, DEFAULT_PIPELINE_ID) if s.kind == "open"]
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=365)
    rows: list[dict[str, Any]] = []
    for i in range(DEALS):
        created = start + timedelta(seconds=i * 300)
        rows.append(
            {
                "id": str(new_id()),
                "title": f"Deal {i}",
                "pipeline_id": DEFAULT_PIPELINE_ID,
                "stage_id": rng.choice(stages).id,
                "owner_id": rng.choice(owners),
                "amount": Decimal(rng.randint(1000, 10_000_000)) / 100,
                "currency": rng.choice(CURRENCIES),
                "status": "open",
                "source": "manual",
                "stage_entered_at": created,
                "version": 1,
                "created_at": created,
                "updated_at": created,
            }
        )
    for chunk in range(0, len(rows), 5000):
        async with db.transaction() as session:
            await session.execute(insert(Deal), rows[chunk : chunk + 5000])
    async with db.transaction() as session:
        await rebuild_totals(session)  # the bulk insert bypassed the ORM that keeps them
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE"))
    return owners[0]


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """p50 and p95 of `call` in milliseconds, after a few warm-up calls."""
    for _ in range(5):
        await call()
    samples = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(samples, n=20)
    return statistics.median(samples), cuts[18]


async def run(db_url: str) -> None:
    load_all_models()
    db = Database(db_url)
    try:
        await migrate(db, service_migrations(crm_deals.__file__))
        await ensure_default_pipeline(db, locale="en")
        began = time.perf_counter()
        rep_id = await seed(db)
        print(
            f"seeded {DEALS} open deals in {time.perf_counter() - began:.1f} s ({db.engine.name})"
        )
        for label, principal in (
            ("admin", Principal(user_id=str(uuid.uuid4()), role=Role.ADMIN)),
            ("sales rep", Principal(user_id=rep_id, role=Role.SALES_REP)),
        ):

            async def first_page(principal: Principal = principal) -> Any:
                return await board(
                    db=db,
                    principal=principal,
                    pipeline_id=DEFAULT_PIPELINE_ID,
                    filters=BoardFilter(),
                    per_stage=20,
                )

            p50, p95 = await timed(first_page)
            verdict = "ok" if p95 < 100 else "OVER the 100 ms target"
            print(f"board, {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({verdict})")
    finally:
        await db.dispose()


async def main() -> None:
    server = os.environ.get("BENCH_DATABASE_URL")
    if not server:
        with tempfile.TemporaryDirectory() as tmp:
            await run(f"sqlite+aiosqlite:///{Path(tmp) / 'deals.db'}")
        return
    base = make_url(server).set(drivername="postgresql+asyncpg")
    name = f"bench_deals_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        await run(base.set(database=name).render_as_string(hide_password=False))
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
