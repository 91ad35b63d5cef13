"""E-mails per second from the notifications workers into postfix's `smtp-sink`, beside `smtp-source`.

Target (issue 6): at least 1,500 messages/s of ~5 KB personalised bulk mail on
2 cores, and at least 30 % of what `smtp-source` pushes into the same sink in
the same run (the machine's ceiling). Printed, never asserted.

Needs `smtp-sink` and `smtp-source` (Debian package postfix); without them it
says so and stops. Settings (environment):
  BENCH_MESSAGES      e-mails (default 20,000)
  BENCH_WORKERS       worker processes of the service sharing the queue, as
                      replicas or WORKERS=n would run (default 2, one per core)
  BENCH_CONCURRENCY   sends and SMTP connections per worker (default 40)
  BENCH_PROFILE       a path: each worker process writes its cProfile to <path>.<pid>
  BENCH_DATABASE_URL  a PostgreSQL server (postgresql://...): a fresh database is
                      created on it and dropped afterwards; default SQLite
The nats-server is the bench's own. The commands are rendered first; the
measured time runs from publishing the first bulk command to the last
notification recorded `sent`: publishing, intake, consent check, rendering,
SMTP and the recorded outcome, all included; when every command was published
and stored (intake) is printed too.

Last figures (a slower 2-core machine, quiet: smtp-source 8,800-9,600/s), 20,000
messages, 2 workers: 953-1,035/s on SQLite (10.8 %), 694/s on PostgreSQL (6.9 %),
with campaign e-mails in `SendBulkEmails` commands and their deliveries reported in
batches; 391-409/s (4.6 %) on the same machine before those changes. Earlier, on a
faster machine (smtp-source ~22,000/s): 1,429-1,466/s on SQLite (6.4-6.5 %),
1,236-1,275/s on PostgreSQL. Where the CPU goes: services/notifications/README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_kernel.bus import Bus, envelope_message
from crm_kernel.contracts.notifications import BulkEmail, bulk_email_commands
from crm_kernel.db import Database
from crm_kernel.testing import (
    TEST_JWT_SECRET,
    NatsServer,
    free_port,
    serve_in_process,
    wait_until,
)
from crm_notifications.main import create_app
from crm_notifications.models import Consent, Notification
from crm_notifications.settings import NotificationsSettings

PARAGRAPH = (
    "Dear {name}, this week our catalogue has new offers picked for you: garden tools, "
    "kitchen appliances and winter tyres at prices lower than last season. "
)


def personalised(index: int) -> tuple[str, str, str]:
    """Subject, text and HTML of about 5 KB for recipient `index`."""
    name = f"Customer {index}"
    text = (PARAGRAPH.format(name=name) * 14)[:2600]
    html = f"<html><body><p>{text}</p></body></html>"
    return f"Offers for {name}", text, html


def bulk_email(campaign: str, index: int) -> BulkEmail:
    subject, text, html = personalised(index)
    return BulkEmail(
        key=f"{campaign}:{index}",
        to=f"r{index}@example.org",
        subject=subject,
        body_text=text,
        body_html=html,
        unsubscribe_url=f"https://crm.example.com/public/u/{campaign}-{index}",
    )


async def listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def smtp_source_rate(port: int, count: int) -> float:
    started = time.monotonic()
    source = await asyncio.create_subprocess_exec(
        *("smtp-source", "-d", "-s", "20", "-l", "5120", "-m", str(count)),
        *("-f", "bench@shop.example", "-t", "sink@example.org", f"127.0.0.1:{port}"),
        stdout=subprocess.DEVNULL,
    )
    if await source.wait() != 0:
        raise RuntimeError("smtp-source failed")
    return count / (time.monotonic() - started)


def run_worker(settings: dict[str, Any], ready: Any, stop: Any) -> None:
    """One worker process of the service (intake and dispatchers), until `stop` is set."""

    async def serve() -> None:
        async with serve_in_process(create_app(NotificationsSettings(**settings))):
            ready.set()
            await asyncio.to_thread(stop.wait)

    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        asyncio.run(serve())
        return
    with cProfile.Profile() as profiler:
        asyncio.run(serve())
    profiler.dump_stats(f"{profile}.{os.getpid()}")


@contextlib.contextmanager
def worker_processes(settings: dict[str, Any], workers: int) -> Iterator[None]:
    """`workers` processes of the service sharing the queue, as replicas (or WORKERS=n) would."""
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    started = []
    try:
        for _ in range(workers):
            ready = spawn.Event()
            process = spawn.Process(target=run_worker, args=(settings, ready, stop), daemon=True)
            process.start()
            started.append(process)
            if not ready.wait(120):
                raise RuntimeError("a worker process did not start")
        yield
    finally:
        stop.set()
        for process in started:
            process.join(30)
            if process.is_alive():
                process.kill()


@contextlib.asynccontextmanager
async def database_url(tmp: Path) -> AsyncIterator[str]:
    """SQLite in `tmp`, or a fresh database on the BENCH_DATABASE_URL server, dropped afterwards."""
    server = os.environ.get("BENCH_DATABASE_URL")
    if not server:
        yield f"sqlite+aiosqlite:///{tmp / 'n.db'}"
        return
    base = make_url(server).set(drivername="postgresql+asyncpg")
    name = f"bench_notifications_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def workers_rate(
    db_url: str, port: int, count: int, tmp: Path, nats_url: str
) -> tuple[float, float, float]:
    """Messages/s end to end, and the seconds until every command was published and stored."""
    concurrency = os.environ.get("BENCH_CONCURRENCY", "40")
    settings: dict[str, Any] = {
        "DATABASE_URL": db_url,
        "NATS_URL": nats_url,
        "CRM_JWT_SECRET": TEST_JWT_SECRET,
        "CRM_DATA_DIR": str(tmp),
        "SMTP_URL": f"smtp://127.0.0.1:{port}",
        "CRM_MAIL_FROM": "Shop <news@shop.example>",
        "CRM_NOTIFY_BULK_CONCURRENCY": concurrency,
        # One connection per concurrent send: none waits for a free connection.
        "CRM_SMTP_POOL_SIZE": concurrency,
        "LOG_LEVEL": "warning",
    }
    db = Database(db_url)
    bus = await Bus.connect(nats_url, name="bench")
    try:
        with worker_processes(settings, workers_wanted()):
            # Consent as contacts would have published it (setup, not measured).
            now = datetime.now(UTC)
            async with db.transaction() as session:
                await session.execute(
                    insert(Consent),
                    [
                        {
                            "channel": "email",
                            "address": f"r{i}@example.org",
                            "granted": True,
                            "changed_at": now,
                        }
                        for i in range(count)
                    ],
                )
            campaign = str(uuid.uuid4())
            # Rendered before the clock starts, as campaigns' sender does before it commits,
            # and put in `SendBulkEmails` commands the same way (as many as fit one).
            emails = (bulk_email(campaign, i) for i in range(count))
            commands = bulk_email_commands(emails, source_type="campaign", source_id=campaign)
            messages = [envelope_message(c.envelope()) for c in commands]
            started = time.monotonic()
            # In batches with every ack in flight, as campaigns' outbox relay publishes them.
            for chunk in range(0, len(messages), 500):
                results = await bus.publish_batch(messages[chunk : chunk + 500])
                if errors := [r for r in results if isinstance(r, BaseException)]:
                    raise RuntimeError(f"publishing failed: {errors[0]!r}")
            published = time.monotonic() - started
            stored_after: list[float] = []

            async def all_sent() -> bool:
                async with db.session() as session:
                    counts = dict(
                        (
                            await session.execute(
                                select(Notification.status, func.count()).group_by(
                                    Notification.status
                                )
                            )
                        ).all()
                    )
                if not stored_after and sum(counts.values()) >= count:
                    stored_after.append(time.monotonic() - started)
                return counts.get("sent", 0) >= count

            await wait_until(all_sent, timeout=3600, interval=0.2, message="all sent")
            return count / (time.monotonic() - started), published, stored_after[0]
    finally:
        await bus.close()
        await db.dispose()


def workers_wanted() -> int:
    return int(os.environ.get("BENCH_WORKERS", "2"))


async def main() -> int:
    if not (shutil.which("smtp-sink") and shutil.which("smtp-source")):
        print("smtp-sink / smtp-source not found (Debian package postfix): benchmark skipped")
        return 0
    count = int(os.environ.get("BENCH_MESSAGES", "20000"))
    workers = workers_wanted()
    port = free_port()
    # smtp-sink refuses to run as root without a user to switch to.
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = await asyncio.create_subprocess_exec("smtp-sink", *as_user, f"127.0.0.1:{port}", "1000")
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as folder:
        tmp = Path(folder)
        nats = NatsServer(tmp / "nats")
        nats.start()
        try:
            await wait_until(lambda: listening(port), timeout=10, message="smtp-sink")
            ceiling = await smtp_source_rate(port, count)
            async with database_url(tmp) as db_url:
                ours, published, intake = await workers_rate(db_url, port, count, tmp, nats.url)
        finally:
            nats.stop()
            if sink.returncode is None:
                sink.terminate()
            await sink.wait()
    backend = "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL") else "SQLite"
    print(
        f"messages: {count} (~5 KB personalised bulk e-mail), {workers} worker processes, {backend}"
    )
    print(f"smtp-source -> smtp-sink:          {ceiling:8.0f} messages/s")
    print(f"notifications workers -> smtp-sink: {ours:8.0f} messages/s")
    print(
        f"  (every command published after {published:.1f} s, stored after {intake:.1f} s,"
        f" sent after {count / ours:.1f} s)"
    )
    print(f"workers / smtp-source:              {ours / ceiling:8.1%} (target >= 30 %, >= 1,500/s)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
