"""The drip scheduler: advances due enrolments and looks for segment joins, on every replica."""

from __future__ import annotations

import asyncio
import logging
import time

from crm_campaigns.drips.stepper import BATCH, advance_due
from crm_campaigns.drips.triggers import evaluate_segments
from crm_kernel.app import Runtime
from crm_kernel.db import Database
from crm_kernel.settings import ServiceSettings

log = logging.getLogger(__name__)

# How often due steps are looked for, and segments evaluated for new members.
TICK_SECONDS = 0.5
SEGMENT_EVERY_SECONDS = 2.0


async def run(db: Database, settings: ServiceSettings) -> None:
    """Tick until cancelled; a failed tick (database busy or down) is logged and retried."""
    last_segments = 0.0
    while True:
        try:
            if time.monotonic() - last_segments >= SEGMENT_EVERY_SECONDS:
                last_segments = time.monotonic()
                await evaluate_segments(db)
            while await advance_due(db, settings) >= BATCH:
                pass  # more are due: go on without sleeping
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("drip scheduler tick failed")
        await asyncio.sleep(TICK_SECONDS)


async def start(runtime: Runtime) -> None:
    """Start hook: run the scheduler for the life of the service."""
    runtime.spawn(run(runtime.db, runtime.settings), "drip-scheduler")
