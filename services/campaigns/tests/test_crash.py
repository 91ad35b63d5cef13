"""kill -9 of the campaigns service mid-send: after a restart every recipient has exactly
one message (the ledger, the outbox and JetStream's duplicate window together)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from crm_campaigns.testing import (
    FakeNotifications,
    User,
    audience_of,
    campaign_action,
    create_campaign,
    create_template,
    ledger,
)
from crm_kernel.bus import Bus
from crm_kernel.db import Database
from crm_kernel.testing import TEST_JWT_SECRET, free_port, wait_until


@contextmanager
def service_process(
    db_url: str, nats_url: str, tmp_dir: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The service as its own process, the way `make run` starts it."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "NATS_URL": nats_url,
        "CRM_JWT_SECRET": TEST_JWT_SECRET,
        "CRM_DATA_DIR": str(tmp_dir),
        "PORT": str(port),
        "CAMPAIGNS_SEND_BATCH_SIZE": "25",
        "CAMPAIGNS_SEND_POLL_SECONDS": "0.05",
        "LOG_LEVEL": "warning",
    }
    binary = Path(sys.executable).parent / "crm-campaigns"
    log = open(tmp_dir / f"campaigns-{port}.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()


async def _healthy(base: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{base}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_kill_9_mid_send_sends_every_recipient_exactly_once(
    db_url: str, nats_url: str, tmp_dir: Path, bus: Bus, db: Database, marketer: User
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    notifications = FakeNotifications(nats_url)
    async with notifications.running():
        with service_process(db_url, nats_url, tmp_dir, port) as process:
            await wait_until(lambda: _healthy(base), timeout=60, message="service up")
            async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
                segment_id, contacts = await audience_of(bus, db, 400)
                template = await create_template(api, marketer)
                campaign = await create_campaign(
                    api,
                    marketer,
                    template_id=template["id"],
                    segment_ids=[segment_id],
                    rate_per_second=200,
                )
                await campaign_action(api, marketer, campaign["id"], "send")
                await wait_until(lambda: len(notifications.commands) >= 100, message="some sent")
            process.send_signal(signal.SIGKILL)  # kill -9, mid-send
            process.wait()
        assert len(notifications.commands) < 400
        with service_process(db_url, nats_url, tmp_dir, port):
            await wait_until(lambda: _healthy(base), timeout=60, message="service up again")

            async def all_final() -> bool:
                rows = await ledger(db, campaign["id"])
                return all(r.status == "sent" for r in rows)

            await wait_until(all_final, timeout=60, message="every row final")
    assert notifications.keys.most_common(1)[0][1] == 1
    assert notifications.contacts == {c.id for c in contacts}
