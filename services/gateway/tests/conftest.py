"""Fixtures of the gateway's tests: settings, a running gateway, an echoing upstream, bus reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import (
    Api,
    Echo,
    echo_app,
    gateway_settings,
    pending_outbox_rows,
    running_gateway,
    silent_server,
    stream_envelopes,
)
from crm_kernel.events import Envelope
from crm_kernel.testing import serve_in_process


@pytest.fixture
def make_settings(tmp_dir: Path, db_url: str, nats_url: str) -> Callable[..., GatewaySettings]:
    """Gateway settings on this test's database and NATS; overrides by env name."""

    def make(**overrides: Any) -> GatewaySettings:
        return gateway_settings(
            db_url=db_url, nats_url=nats_url, data_dir=str(tmp_dir), **overrides
        )

    return make


@pytest.fixture
async def api(make_settings: Callable[..., GatewaySettings]) -> AsyncIterator[Api]:
    """A running gateway with a bootstrapped admin and no reachable upstream."""
    async with running_gateway(make_settings()) as client:
        yield client


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    received: list[dict[str, Any]] = []
    async with serve_in_process(echo_app(received)) as url:
        yield Echo(url=url, received=received)


@pytest.fixture
async def silent_upstream() -> AsyncIterator[str]:
    """The URL of a server that never answers."""
    async with silent_server() as url:
        yield url


@pytest.fixture
def gateway_events(nats_url: str) -> Callable[[], Awaitable[list[Envelope]]]:
    """Reads every event stored in the gateway's stream, in order."""
    return lambda: stream_envelopes(nats_url, "CRM_GATEWAY")


@pytest.fixture
def pending_outbox(db_url: str) -> Callable[[], Awaitable[int]]:
    """Counts the outbox rows the relay has not published yet."""
    return lambda: pending_outbox_rows(db_url)
