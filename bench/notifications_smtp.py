"""E-mails per second from the notifications workers into postfix's `smtp-sink`, beside `smtp-source`.

Target (issue 6): at least 1,500 messages/s of ~5 KB personalised bulk mail on
2 cores, and at least 30 % of what `smtp-source` pushes into the same sink in
the same run (the machine's ceiling). Printed, never asserted.

Needs `smtp-sink` and `smtp-source` (Debian package postfix); without them it
says so and stops. N = BENCH_MESSAGES (default 20,000). The service runs in
this process with a nats-server of its own, SQLite (or BENCH_DATABASE_URL).
The measured time runs from publishing the first bulk command to the last
notification recorded `sent`: intake, consent check, rendering, SMTP and the
recorded outcome, all included; the time by which every command was stored
(intake alone) is printed too.

Context: on the shared 2-core development machine (other benchmarks and
tests beside it) the workers reached 303/s against smtp-source's 14,332/s
(134/s against 4,093/s before the hot-path changes, at a higher load), far
from the target; intake (the kernel consumer and this process's publisher)
was the bottleneck, see services/notifications/README.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from crm_kernel.bus import Bus
from crm_kernel.contracts.notifications import SendBulkEmail
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


def bulk_email(campaign: str, index: int) -> SendBulkEmail:
    subject, text, html = personalised(index)
    return SendBulkEmail(
        key=f"{campaign}:{index}",
        to=f"r{index}@example.org",
        subject=subject,
        body_text=text,
        body_html=html,
        unsubscribe_url=f"https://crm.example.com/public/u/{campaign}-{index}",
        source_type="campaign",
        source_id=campaign,
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


async def workers_rate(port: int, count: int, tmp: Path, nats_url: str) -> tuple[float, float]:
    """Messages/s end to end, and the seconds until every command was stored (intake)."""
    db_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp / 'n.db'}"
    concurrency = os.environ.get("BENCH_CONCURRENCY", "40")
    settings = NotificationsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp,
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        CRM_MAIL_FROM="Shop <news@shop.example>",
        CRM_NOTIFY_BULK_CONCURRENCY=concurrency,
        # One connection per concurrent send: none waits for a free connection.
        CRM_SMTP_POOL_SIZE=concurrency,
    )
    db = Database(db_url)
    bus = await Bus.connect(nats_url, name="bench")
    try:
        async with serve_in_process(create_app(settings)):
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
            started = time.monotonic()
            # Published in concurrent chunks, as campaigns' sender does: not a wait per ack.
            for chunk in range(0, count, 500):
                await asyncio.gather(
                    *(
                        bus.publish(bulk_email(campaign, i).envelope())
                        for i in range(chunk, min(count, chunk + 500))
                    )
                )

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
            return count / (time.monotonic() - started), stored_after[0]
    finally:
        await bus.close()
        await db.dispose()


async def main() -> int:
    if not (shutil.which("smtp-sink") and shutil.which("smtp-source")):
        print("smtp-sink / smtp-source not found (Debian package postfix): benchmark skipped")
        return 0
    count = int(os.environ.get("BENCH_MESSAGES", "20000"))
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
            ours, intake = await workers_rate(port, count, tmp, nats.url)
        finally:
            nats.stop()
            if sink.returncode is None:
                sink.terminate()
            await sink.wait()
    print(f"messages: {count} (~5 KB personalised bulk e-mail)")
    print(f"smtp-source -> smtp-sink:          {ceiling:8.0f} messages/s")
    print(f"notifications workers -> smtp-sink: {ours:8.0f} messages/s")
    print(f"  (every command stored after {intake:.1f} s of {count / ours:.1f} s)")
    print(f"workers / smtp-source:              {ours / ceiling:8.1%} (target >= 30 %, >= 1,500/s)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
