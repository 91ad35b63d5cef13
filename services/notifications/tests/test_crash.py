"""A worker killed in the middle of a batch: after a restart every message is delivered, duplicates only as counted."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from crm_kernel.bus import Bus, OutgoingMessage, envelope_message
from crm_kernel.contracts.notifications import SendEmail
from crm_kernel.db import Database
from crm_kernel.testing import TEST_JWT_SECRET, free_port, wait_until
from crm_notifications.models import Notification

TOTAL = 1000


class Counting:
    """The SMTP side: counts each subject (= the notification key) it receives."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        self.received[str(message["Subject"])] += 1
        return "250 OK"


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "crm-notifications"
    with open(log, "ab") as out:
        return subprocess.Popen([str(binary)], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_kill_9_mid_batch_then_restart_delivers_all_with_counted_duplicates(
    db_url: str, nats_url: str, tmp_dir: Path
) -> None:
    smtp_port, http_port = free_port(), free_port()
    counting = Counting()
    controller = Controller(counting, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "NATS_URL": nats_url,
        "CRM_JWT_SECRET": TEST_JWT_SECRET,
        "CRM_DATA_DIR": str(tmp_dir),
        "PORT": str(http_port),
        "NOTIFICATIONS_PORT": str(http_port),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "LOG_LEVEL": "warning",
        "CRM_NOTIFY_LEASE_SECONDS": "10",
    }
    bus = await Bus.connect(nats_url, name="test")
    await bus.ensure_streams()
    db = Database(db_url)
    worker = start_worker(env, tmp_dir / "worker.log")
    try:
        commands = [
            SendEmail(key=f"k{i:04d}", to=f"r{i}@example.com", subject=f"k{i:04d}", body_text="x")
            for i in range(TOTAL)
        ]
        for start in range(0, TOTAL, 250):
            batch = [envelope_message(c.envelope()) for c in commands[start : start + 250]]
            results = await bus.publish_batch(
                [OutgoingMessage(m.subject, m.payload, m.headers) for m in batch]
            )
            assert not [r for r in results if isinstance(r, BaseException)]
        await wait_until(
            lambda: len(counting.received) >= 200, timeout=60, message="some deliveries"
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        partial = len(counting.received)
        worker = start_worker(env, tmp_dir / "worker.log")
        # Rows the killed worker held under lease come back when the lease (10 s here) runs
        # out; all others go on at once.
        await wait_until(
            lambda: len(counting.received) == TOTAL,
            timeout=120,
            interval=0.5,
            message=f"all {TOTAL} delivered (had {partial} before the kill)",
        )

        async def statuses() -> dict[str, int]:
            async with db.session() as session:
                rows = await session.execute(
                    select(Notification.status, func.count()).group_by(Notification.status)
                )
                return {status: count for status, count in rows.all()}

        async def all_recorded() -> bool:
            return await statuses() == {"sent": TOTAL}

        try:
            await wait_until(
                all_recorded, timeout=60, message="every notification recorded as sent"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {await statuses()}") from exc
        async with db.session() as session:
            uncertain = (
                await session.execute(select(func.sum(Notification.uncertain_attempts)))
            ).scalar_one()
        duplicates = sum(n - 1 for n in counting.received.values())
        assert set(counting.received) == {c.key for c in commands}
        # Only a message in the window between the server's 250 and our record can repeat.
        assert duplicates <= (uncertain or 0)
        print(
            f"delivered {TOTAL}, {partial} before the kill, duplicates {duplicates}, uncertain {uncertain}"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        controller.stop()
        await bus.close()
        await db.dispose()
