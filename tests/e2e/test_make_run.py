"""`make run` from the checkout: comes up, serves the skeleton, and SIGTERM leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from stack import SERVICES, free_port

ROOT = Path(__file__).resolve().parents[2]


def processes_using(data_dir: Path) -> list[int]:
    """Pids whose environment or command line mention this run's data folder."""
    marker = str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            blob = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in blob:
            found.append(int(entry.name))
    return found


def test_make_run_serves_and_stops_cleanly(tmp_dir: Path) -> None:
    data_dir = tmp_dir / "run-data"
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "CRM_DATA_DIR": str(data_dir),
        "CRM_NATS_PORT": str(free_port()),
        "CRM_ADMIN_EMAIL": "owner@make-run.test",
        **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }
    env.pop("NATS_URL", None)
    env.pop("MAKEFLAGS", None)
    runner = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = []
        deadline = time.monotonic() + 120
        assert runner.stdout is not None
        while time.monotonic() < deadline:
            line = runner.stdout.readline()
            if not line:
                break
            banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(banner)
        assert "CRM is running" in text, text
        password = (data_dir / "admin-password").read_text().strip()
        assert f"owner@make-run.test / {password}" in text
        base = f"http://127.0.0.1:{ports['gateway']}/api/v1"
        assert f"http://127.0.0.1:{ports['gateway']}/api/v1" in text
        with httpx.Client(base_url=base, timeout=15) as client:
            token = client.post(
                "/auth/login", json={"email": "owner@make-run.test", "password": password}
            )
            assert token.status_code == 200, token.text
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            created = client.post("/contacts", json={"first_name": "Run"}, headers=headers)
            assert created.status_code == 201
            assert (
                client.get(f"/contacts/{created.json()['id']}", headers=headers).status_code == 200
            )
        assert processes_using(data_dir), "the services should be running"
        runner.send_signal(signal.SIGTERM)
        # make forwards nothing by itself: signal the runner (make's child) as a user's Ctrl-C would.
        for pid in processes_using(data_dir):
            if b"tools/run.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        runner.wait(60)
    finally:
        if runner.poll() is None:
            runner.kill()
    deadline = time.monotonic() + 20
    while processes_using(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_using(data_dir) == []
    # Started again, it finds its data where it left it (same admin password file, same database).
    assert (data_dir / "contacts.db").exists()
