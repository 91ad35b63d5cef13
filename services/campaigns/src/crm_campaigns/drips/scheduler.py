"""The drip scheduler: advances due enrolments and looks for segment joins, on every replica."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from crm_campaigns.drips.stepper import BATCH, advance_due
from crm_campaigns.drips.triggers import evaluate_segments
from crm_kernel.app import Runtime, repeat
from crm_kernel.db import Database
from crm_kernel.settings import ServiceSettings

# How often due steps are looked for, and segments evaluated for new members.
TICK_SECONDS = 0.5
SEGMENT_EVERY_SECONDS = 2.0


def ticker(db: Database, settings: ServiceSettings) -> Callable[[], Awaitable[int]]:
    """One tick: segments evaluated for new members now and then, then a batch of due steps."""
    last_segments = 0.0

    async def tick() -> int:
        nonlocal last_segments
        if time.monotonic() - last_segments >= SEGMENT_EVERY_SECONDS:
            last_segments = time.monotonic()
            await evaluate_segments(db)
        return await advance_due(db, settings)

    return tick


async def start(runtime: Runtime) -> None:
    """Start hook: run the scheduler for the life of the service."""
    tick = ticker(runtime.db, runtime.settings)
    runtime.spawn(repeat(tick, interval=TICK_SECONDS, batch=BATCH, name="drips"), "drip-scheduler")
