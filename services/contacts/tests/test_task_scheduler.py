"""The task scheduler: due-soon and overdue notices, each exactly once, even with two replicas."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from crm_contacts.main import create_app
from crm_contacts.settings import ContactsSettings
from crm_contacts.testing import Events, auth, wait_for_events
from crm_kernel.testing import TEST_JWT_SECRET, serve_in_process, wait_until

DUE_SOON, OVERDUE = "crm.contacts.task.due_soon", "crm.contacts.task.overdue"


@asynccontextmanager
async def replica(db_url: str, nats_url: str, tmp_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ContactsSettings(
        DATABASE_URL=db_url,
        NATS_URL=nats_url,
        CRM_JWT_SECRET=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_dir,
        CRM_TASK_SCHEDULER_INTERVAL=0.1,
    )
    async with serve_in_process(create_app(settings)) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as client:
            yield client


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def add_task(api: httpx.AsyncClient, **fields: Any) -> str:
    body = {"title": "Call back", "deal_id": str(uuid.uuid4()), **fields}
    response = await api.post("/tasks", json=body, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_reminder_then_overdue_once_each_and_again_after_the_due_time_moves(
    db_url: str, nats_url: str, tmp_dir: Path, events: Events
) -> None:
    async with replica(db_url, nats_url, tmp_dir) as api:
        task_id = await add_task(api, due_at=at(3), remind_before_minutes=10)
        quiet = await add_task(api, due_at=at(3600))  # no reminder, not due
        done = await add_task(api, due_at=at(1))
        patched = await api.patch(f"/tasks/{done}", json={"status": "done"}, headers=auth())
        assert patched.status_code == 200

        reminded = await wait_for_events(events, 1, DUE_SOON)
        assert [e.data["id"] for e in reminded] == [task_id]
        overdue = await wait_for_events(events, 1, OVERDUE)
        assert [e.data["id"] for e in overdue] == [task_id]
        notices = [e.type for e in await events(DUE_SOON, OVERDUE)]
        assert notices == [DUE_SOON, OVERDUE]  # the reminder came first
        late = await api.get("/tasks", params={"overdue": "true"}, headers=auth())
        assert [t["id"] for t in late.json()["items"]] == [task_id]

        # A new due time earns a new reminder and a new overdue notice.
        moved = await api.patch(f"/tasks/{task_id}", json={"due_at": at(1)}, headers=auth())
        assert moved.status_code == 200, moved.text
        again = await wait_for_events(events, 2, OVERDUE)
        assert [e.data["id"] for e in again] == [task_id, task_id]
        assert again[1].data["version"] == 2
        assert [e.data["id"] for e in await events(DUE_SOON)] == [task_id, task_id]
    assert quiet not in {e.data["id"] for e in await events(DUE_SOON, OVERDUE)}


async def test_two_replicas_and_a_restart_notify_exactly_once(
    db_url: str, nats_url: str, tmp_dir: Path, events: Events
) -> None:
    async with replica(db_url, nats_url, tmp_dir / "a") as first:
        async with replica(db_url, nats_url, tmp_dir / "b") as second:
            tasks = [
                await add_task(api, due_at=at(1 + i * 0.1), remind_before_minutes=1)
                for i, api in enumerate([first, second] * 5)
            ]
            await wait_for_events(events, len(tasks), OVERDUE)
    # A restarted replica finds every notice claimed; a task due after the
    # others proves that it has scanned since.
    async with replica(db_url, nats_url, tmp_dir / "c") as restarted:
        sentinel = await add_task(restarted, due_at=at(0.5))

        async def sentinel_notified() -> bool:
            return sentinel in {e.data["id"] for e in await events(OVERDUE)}

        await wait_until(sentinel_notified, timeout=30, message="the sentinel's overdue notice")
    overdue = Counter(e.data["id"] for e in await events(OVERDUE))
    reminded = Counter(e.data["id"] for e in await events(DUE_SOON))
    assert overdue == Counter([*tasks, sentinel])
    # At most one reminder each: a task whose first scan comes after its due
    # time (a loaded machine) rightly gets only the overdue notice.
    assert set(reminded) <= set(tasks)
    assert set(reminded.values()) <= {1}
