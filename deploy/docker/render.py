"""Write services/<name>/Dockerfile from the one template, so the six images cannot drift apart.

Usage (from anywhere): python3 deploy/docker/render.py [--check]
With --check nothing is written; the exit status is 1 if a Dockerfile differs from the template.
A Dockerfile's exec-form CMD cannot expand a build ARG, hence a rendered file per service
rather than one Dockerfile taking --build-arg SERVICE: each file stays buildable on its own with
`docker build -f services/<name>/Dockerfile .`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).resolve().with_name("service.Dockerfile.template")

# The default ports of SPEC.md section 5; keep in step with crm_kernel.settings.DEFAULT_PORTS.
SERVICES = {
    "gateway": 8000,
    "contacts": 8001,
    "deals": 8002,
    "campaigns": 8003,
    "notifications": 8004,
    "reports": 8005,
}


def render(service: str, port: int) -> str:
    """The Dockerfile text of one service."""
    text = TEMPLATE.read_text(encoding="utf-8")
    return text.replace("@SERVICE@", service).replace("@PORT@", str(port))


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for service, port in SERVICES.items():
        path = ROOT / "services" / service / "Dockerfile"
        wanted = render(service, port)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == wanted:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.write_text(wanted, encoding="utf-8")
    verb = "out of date" if check else "written"
    for path in stale:
        print(f"{path}: {verb}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
