"""A personalised campaign of N recipients: from `POST /send` to the messages leaving.

Target (issue 7): 100,000 recipients from `POST /send` to the last message
accepted by a local `smtp-sink`, at least 1,000 messages/s, beside the raw
`smtp-source` ceiling of the same run. Printed, never asserted.

Always measured: the campaigns service alone (in this process), from `POST
/send` (snapshot of the audience into the ledger, rendering with tracking
links, outbox, relay) to the last `SendBulkEmails` command stored in the
notifications bulk stream. With `smtp-sink`/`smtp-source` (Debian package postfix) also: the
notifications service as its own process (`crm-notifications`, as deployed)
delivering to `smtp-sink`, from `POST /send` to the last notification recorded
`sent`; the campaigns service then also takes the delivery reports back.
N = BENCH_MESSAGES (default 100,000); SQLite unless BENCH_DATABASE_URL /
BENCH_NOTIFICATIONS_DATABASE_URL are set; BENCH_NOTIFICATIONS_WORKERS worker
processes of notifications (default 2, one per core, as its own bench runs it). BENCH_PROFILE=path writes a cProfile
of the campaigns-alone run (this process) there.

Last figures (SQLite, a slower 2-core machine, quiet; the table with before/after is
in services/campaigns/README.md, "Benchmark"): 100,000 recipients, raw JetStream
2,474/s, campaigns -> bulk stream 2,000/s, smtp-source 9,705/s, POST /send ->
smtp-sink 483/s (375 before bulk deliveries were reported in batches; on a faster
machine, before `SendBulkEmails`: 790/s beside smtp-source's 21,945/s). Target
1,000/s not met.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import nats
from sqlalchemy import func, insert, select

from crm_campaigns.campaigns.models import LedgerRow
from crm_campaigns.main import create_app
from crm_campaigns.recipients.models import Recipient, Segment, SegmentMember
from crm_campaigns.settings import CampaignsSettings
from crm_kernel.auth import TokenKeys
from crm_kernel.db import Database
from crm_kernel.tables import outbox
from crm_kernel.testing import NatsServer, free_port, issue_token, serve_in_process, wait_until

SECRET = "bench-secret-0123456789abcdef0123456789"  # noqa: S105 - a throwaway bench key
TEMPLATE = {
    "name": "Bench",
    "channel": "email",
    "subject": "Offers for {{ contact.first_name | default('you') }}",
    "body_html": "<html><body><p>Dear {{ contact.first_name }} {{ contact.last_name }},</p>"
    + "<p>this week our catalogue has new offers picked for you: garden tools, kitchen "
    "appliances and winter tyres at prices lower than last season.</p>"
    * 12
    + '<p><a href="https://shop.example/offers">See the offers</a> '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>',
    "body_text": "Dear {{ contact.first_name }}, new offers at https://shop.example/offers",
}


async def seed(db: Database, count: int) -> str:
    """N consenting contacts in a static segment of the replica (setup, not measured)."""
    segment_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    async with db.transaction() as session:
        session.add(Segment(id=segment_id, name="Bench", kind="static", version=1))
        for start in range(0, count, 5000):
            chunk = ids[start : start + 5000]
            await session.execute(
                insert(Recipient),
                [
                    {
                        "id": cid,
                        "first_name": f"Customer{start + i}",
                        "last_name": "Bench",
                        "email": f"r{start + i}@example.org",
                        "owner_id": "",
                        "tags": [],
                        "custom": {},
                        "consent_email": True,
                        "consent_sms": False,
                        "erased": False,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                    for i, cid in enumerate(chunk)
                ],
            )
            await session.execute(
                insert(SegmentMember), [{"segment_id": segment_id, "contact_id": c} for c in chunk]
            )
    return segment_id


async def all_handed_over(db: Database, campaign_id: str) -> bool:
    """Every ledger row queued and every command in the bulk stream (the outbox is empty).

    A `SendBulkEmails` carries many recipients, so the stream's message count says
    little; the campaign's own records say when the last one was stored.
    """
    async with db.session() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(LedgerRow)
            .where(LedgerRow.campaign_id == campaign_id, LedgerRow.status == "pending")
        )
        unpublished = await session.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
    return pending == 0 and unpublished == 0


async def jetstream_rate(nats_url: str, count: int) -> float:
    """The bus ceiling: 6 KB messages published in batches of 500 to a scratch stream."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="BENCH_CEILING", subjects=["bench.ceiling"])
        payload = b"x" * 6000
        started = time.monotonic()
        for start in range(0, count, 500):
            acks = [
                await js.publish_async("bench.ceiling", payload)
                for _ in range(min(500, count - start))
            ]
            await asyncio.gather(*acks)
        rate = count / (time.monotonic() - started)
        await js.delete_stream("BENCH_CEILING")
        return rate
    finally:
        await nc.close()


def smtp_source_rate(port: int, count: int) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            *("smtp-source", "-d", "-s", "20", "-l", "5120", "-m", str(count)),
            *("-f", "bench@shop.example", "-t", "sink@example.org", f"127.0.0.1:{port}"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return count / (time.monotonic() - started)


def smtp_sink_command(port: int) -> list[str]:
    """smtp-sink refuses to run as root unless told which user to become."""
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    return ["smtp-sink", *user, f"127.0.0.1:{port}", "1000"]


def spawn_notifications(
    tmp: Path, nats_url: str, smtp_port: int
) -> tuple[subprocess.Popen[bytes], IO[bytes], str, str]:
    """Start `crm-notifications` into smtp-sink: (process, its log, base URL, database URL)."""
    tmp.mkdir(parents=True, exist_ok=True)
    url = os.environ.get("BENCH_NOTIFICATIONS_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp / 'notifications.db'}"
    )
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "NATS_URL": nats_url,
        "CRM_JWT_SECRET": SECRET,
        "CRM_DATA_DIR": str(tmp),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "CRM_MAIL_FROM": "Shop <news@shop.example>",
        "PORT": str(port),
        "LOG_LEVEL": "warning",
        # Worker processes of notifications, as an operator scales it (WORKERS=n).
        "WORKERS": os.environ.get("BENCH_NOTIFICATIONS_WORKERS", "2"),
    }
    log = open(tmp / "notifications.log", "ab")  # noqa: SIM115 - closed by the caller
    binary = Path(sys.executable).parent / "crm-notifications"
    process = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=log)
    return process, log, f"http://127.0.0.1:{port}", url


@contextlib.asynccontextmanager
async def notifications_process(
    tmp: Path, nats_url: str, smtp_port: int, count: int
) -> AsyncIterator[Database]:
    """`crm-notifications` as its own process into smtp-sink, consent for every address."""
    from crm_notifications.models import Consent

    process, log, base, url = spawn_notifications(tmp, nats_url, smtp_port)
    db = Database(url)
    try:

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    answer = await client.get(f"{base}/readyz")
                    return answer.status_code == 200
            except httpx.HTTPError:
                return process.poll() is not None  # exited: the assert below says so

        await wait_until(ready, timeout=120, message="notifications up")
        assert process.poll() is None, f"crm-notifications exited; see {tmp}/notifications.log"
        now = datetime.now(UTC)
        async with db.transaction() as session:
            for start in range(0, count, 5000):
                await session.execute(
                    insert(Consent),
                    [
                        {
                            "channel": "email",
                            "address": f"r{i}@example.org",
                            "granted": True,
                            "changed_at": now,
                        }
                        for i in range(start, min(count, start + 5000))
                    ],
                )
        yield db
    finally:
        await db.dispose()
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def sent_count(db: Database) -> int:
    from crm_notifications.models import Notification

    async with db.session() as session:
        sent = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.status == "sent")
        )
    return int(sent or 0)


async def status_counts(db: Database) -> dict[str, int]:
    from crm_notifications.models import Notification

    async with db.session() as session:
        rows = await session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)
        )
    return {status: count for status, count in rows}


async def run(count: int, tmp: Path, nats_url: str, smtp_port: int | None) -> dict[str, float]:
    await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp / 'campaigns.db'}"
    settings = CampaignsSettings(
        DATABASE_URL=url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=SECRET,
        CRM_DATA_DIR=tmp,
        CAMPAIGNS_SEND_BATCH_SIZE=1000,
    )
    db = Database(url)
    figures: dict[str, float] = {}
    profile = os.environ.get("BENCH_PROFILE") if smtp_port is None else None
    async with AsyncExitStack() as stack:
        notifications_db: Database | None = None
        if smtp_port is not None:
            notifications_db = await stack.enter_async_context(
                notifications_process(tmp, nats_url, smtp_port, count)
            )
        base = await stack.enter_async_context(serve_in_process(create_app(settings)))
        segment_id = await seed(db, count)
        token = issue_token("marketer", keys=TokenKeys(secret=SECRET))
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=600) as api:
            template = (await api.post("/templates", json=TEMPLATE, headers=headers)).json()
            campaign = (
                await api.post(
                    "/campaigns",
                    json={
                        "name": "Bench",
                        "template_id": template["id"],
                        "segment_ids": [segment_id],
                        "rate_per_second": 10_000,
                    },
                    headers=headers,
                )
            ).json()
            profiler = cProfile.Profile() if profile else None
            if profiler is not None:
                profiler.enable()
            started = time.monotonic()
            response = await api.post(f"/campaigns/{campaign['id']}/send", headers=headers)
            assert response.status_code == 200, response.text
            figures["snapshot_s"] = time.monotonic() - started

            async def all_queued() -> bool:
                return await all_handed_over(db, campaign["id"])

            if notifications_db is None:
                await wait_until(all_queued, timeout=3600, interval=0.2, message="all queued")
                figures["campaigns_per_s"] = count / (time.monotonic() - started)
                if profiler is not None and profile:
                    profiler.disable()
                    profiler.dump_stats(profile)
            else:
                sink_db = notifications_db

                async def all_sent() -> bool:
                    return await sent_count(sink_db) >= count

                await wait_until(all_queued, timeout=3600, interval=0.2, message="all queued")
                figures["queued_s"] = time.monotonic() - started
                try:
                    await wait_until(all_sent, timeout=3600, interval=0.5, message="all sent")
                except BaseException:
                    print("notifications by status:", await status_counts(sink_db), flush=True)
                    raise
                figures["end_to_end_per_s"] = count / (time.monotonic() - started)
    await db.dispose()
    return figures


async def main() -> int:
    count = int(os.environ.get("BENCH_MESSAGES", "100000"))
    smtp = bool(shutil.which("smtp-sink") and shutil.which("smtp-source"))
    with tempfile.TemporaryDirectory(prefix="bench-campaigns-") as folder:
        tmp = Path(folder)
        server = NatsServer(tmp / "nats")
        server.start()
        try:
            bus_ceiling = await jetstream_rate(server.url, min(count, 20_000))
            alone = await run(count, tmp / "alone", server.url, None)
            print(f"recipients: {count} (personalised ~5 KB e-mail, click and open tracking)")
            print(f"raw JetStream publish, same server:   {bus_ceiling:8.0f} messages/s")
            print(f"snapshot (POST /send answered):       {alone['snapshot_s']:8.1f} s")
            print(
                f"campaigns -> bulk stream:             {alone['campaigns_per_s']:8.0f} messages/s"
            )
            if not smtp:
                print(
                    "smtp-sink / smtp-source not found (Debian package postfix): SMTP part skipped"
                )
                return 0
            port = free_port()
            sink = await asyncio.create_subprocess_exec(*smtp_sink_command(port))
            try:
                await asyncio.sleep(0.5)
                ceiling = await asyncio.to_thread(smtp_source_rate, port, count)
                server.stop()
                server = NatsServer(tmp / "nats2")
                server.start()
                both = await run(count, tmp / "smtp", server.url, port)
            finally:
                if sink.returncode is None:
                    sink.terminate()
                await sink.wait()
            print(f"smtp-source -> smtp-sink:             {ceiling:8.0f} messages/s")
            print(f"  (same run: all in the bulk stream after {both['queued_s']:.1f} s)")
            print(
                f"POST /send -> smtp-sink (accepted):   {both['end_to_end_per_s']:8.0f} messages/s"
            )
            print("target: >= 1,000 messages/s end to end")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
