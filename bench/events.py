"""Events from commit to read model: throughput, and latency at a steady rate.

Targets (issue 2): 5,000+ events/s from commit to read model, and a change
visible within 100 ms (p99) at 200 events/s. Printed, never asserted.
Runs the real relay and consumer on SQLite (or BENCH_DATABASE_URL) and a
nats-server of its own.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, Float, MetaData, String, Table, func, select

from crm_kernel.bus import Bus
from crm_kernel.consumer import BatchContext, Consumer, Handlers
from crm_kernel.contracts.contacts import ContactCreated
from crm_kernel.db import Database, insert_ignoring_duplicates
from crm_kernel.migrate import migrate
from crm_kernel.outbox import OutboxRelay, add_event
from crm_kernel.testing import NatsServer

metadata = MetaData()
applied = Table(
    "bench_applied",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("committed", Float, nullable=False),
    Column("applied", Float, nullable=False),
    Column("at", DateTime(timezone=True)),
)


def contact(committed: float) -> ContactCreated:
    now = datetime.now(UTC).isoformat()
    return ContactCreated(
        id=str(uuid.uuid4()),
        first_name="B",
        owner_id="o",
        version=1,
        created_at=now,
        updated_at=now,
        position=repr(committed),
    )


async def run(db_url: str, nats_url: str) -> None:
    db = Database(db_url)
    await migrate(db, None)  # the kernel's tables only
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus = await Bus.connect(nats_url, name="bench")
    await bus.ensure_streams()
    handlers = Handlers("bench")

    @handlers.on_batch(ContactCreated)
    async def on_created(events: list[ContactCreated], ctx: BatchContext) -> None:
        now = time.time()
        await insert_ignoring_duplicates(
            ctx.session,
            applied,
            [{"id": e.id, "committed": float(e.position or 0), "applied": now} for e in events],
        )

    async def count() -> int:
        async with db.session() as session:
            return int(
                (await session.execute(select(func.count()).select_from(applied))).scalar_one()
            )

    async def produce(events: int, per_tx: int) -> float:
        started = time.perf_counter()
        for _ in range(events // per_tx):
            async with db.transaction() as session:
                for _ in range(per_tx):
                    await add_event(session, contact(time.time()))
        return events / (time.perf_counter() - started)

    # Throughput: 20,000 events committed first (relay idle), then relayed and consumed.
    total = 20_000
    commit_rate = await produce(total, 100)
    relay = OutboxRelay(db, bus)
    consumer = Consumer(db, bus, handlers)
    await consumer.ensure()
    start = time.perf_counter()
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    deadline = time.monotonic() + 300
    while await count() < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    rate = total / elapsed
    ceiling = await jetstream_ceiling(bus)
    print(
        f"throughput: {total} events relayed and applied in {elapsed:.2f}s = {rate:,.0f} events/s "
        f"(target 5,000/s -> {rate / 5000:.2f}x); producer alone committed {commit_rate:,.0f}/s"
    )
    print(
        f"  ceiling: raw JetStream publish_async with sync_interval always: {ceiling:,.0f} msgs/s "
        f"(pipeline at {rate / ceiling:.0%} of it)"
    )

    # Latency: 200 events/s for 10 s, one transaction each.
    async with db.transaction() as session:
        await session.execute(applied.delete())
    rate, seconds = 200, 10
    paced_from = time.perf_counter()
    for i in range(rate * seconds):
        async with db.transaction() as session:
            await add_event(session, contact(time.time()))
        await asyncio.sleep(max(0.0, paced_from + (i + 1) / rate - time.perf_counter()))
    deadline = time.monotonic() + 60
    while await count() < rate * seconds and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    async with db.session() as session:
        rows = (await session.execute(select(applied.c.committed, applied.c.applied))).all()
    latencies = sorted((a - c) * 1000 for c, a in rows)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"latency at {rate}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms "
        f"(n={len(latencies)}); target p99 100 ms -> {100 / p99:.2f}x headroom"
    )

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await bus.close()
    await db.dispose()


async def jetstream_ceiling(bus: Bus, messages: int = 10_000) -> float:
    """What this NATS server accepts when nothing else runs: 600-byte messages, 500 in flight."""
    await bus.js.add_stream(name="BENCH_CEILING", subjects=["bench.ceiling"])
    started = time.perf_counter()
    for _ in range(messages // 500):
        futures = [await bus.js.publish_async("bench.ceiling", b"x" * 600) for _ in range(500)]
        await asyncio.gather(*futures)
    rate = messages / (time.perf_counter() - started)
    await bus.js.delete_stream("BENCH_CEILING")
    return rate


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        server = NatsServer(Path(tmp) / "nats")
        server.start()
        try:
            url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db"
            print(f"events benchmark on {url.split('://')[0]}", flush=True)
            asyncio.run(run(url, server.url))
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
