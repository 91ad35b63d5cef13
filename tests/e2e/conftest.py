"""End-to-end fixtures: the real processes, started the way `make run` starts them."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crm_kernel.testing import NatsServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e_helpers import ADMIN_EMAIL, ADMIN_PASSWORD
from stack import SERVICES, Stack, StackConfig, free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


def make_config(data_dir: Path, nats_url: str) -> StackConfig:
    return StackConfig(
        data_dir=data_dir,
        ports={name: free_port() for name in SERVICES},
        nats_url=nats_url,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
    )


@contextlib.contextmanager
def running_stack(data_dir: Path, nats_url: str) -> Iterator[Stack]:
    running = Stack(make_config(data_dir, nats_url))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture
def stack(tmp_dir: Path, nats_url: str) -> Iterator[Stack]:
    """Every service as its own process on SQLite, on this test's nats-server (tests that kill)."""
    with running_stack(tmp_dir / "data", nats_url) as running:
        yield running


@pytest.fixture(scope="module")
def shared_stack() -> Iterator[Stack]:
    """One system for a module's tests that only talk to it (starting six processes takes seconds)."""
    folder = Path(tempfile.mkdtemp(prefix="crm-e2e-"))
    server = NatsServer(folder / "nats")
    server.start()
    try:
        with running_stack(folder / "data", server.url) as running:
            yield running
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{stack.config.gateway_url}/api/v1", timeout=15) as client:
        yield client


@pytest.fixture
def shared_gateway(shared_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{shared_stack.config.gateway_url}/api/v1", timeout=15) as client:
        yield client
