"""`make run`: start the whole CRM on this machine until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from stack import Stack, StackConfig


def main() -> int:
    config = StackConfig.from_env()
    stack = Stack(config)
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        print(f"Starting the CRM (data in {config.data_dir}) ...", flush=True)
        stack.start()
        print(
            f"\nCRM is running.\n"
            f"  API:        {config.gateway_url}/api/v1  (OpenAPI: {config.gateway_url}/api/v1/openapi.json)\n"
            f"  Admin:      {config.admin_email} / {config.admin_password}\n"
            f"  NATS:       {stack.nats_url}\n"
            f"  Mail sink:  {config.data_dir / 'mail'}   SMS sink: {config.data_dir / 'sms'}\n"
            f"  Logs:       {stack.logs}\n"
            f"Press Ctrl-C to stop.",
            flush=True,
        )
        restarts: dict[str, list[float]] = {}
        while not stopping:
            time.sleep(0.5)
            for name in stack.dead():
                recent = [t for t in restarts.get(name, []) if time.monotonic() - t < 60]
                print(f"{name} exited; log tail:\n{stack.log_tail(name, 15)}", flush=True)
                if len(recent) >= 5:
                    print(f"{name} keeps failing; stopping the CRM.", flush=True)
                    stopping = True
                    break
                restarts[name] = [*recent, time.monotonic()]
                stack.start_service(name)
    except RuntimeError as exc:
        print(f"Could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("Stopping ...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
