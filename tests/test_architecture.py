"""Each service imports only its own package and the kernel; the kernel imports no service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
SERVICE_PACKAGES = {f"crm_{name}" for name in SERVICES}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_every_service_of_the_spec_is_a_package() -> None:
    assert (
        sorted(["campaigns", "contacts", "deals", "gateway", "notifications", "reports"])
        == SERVICES
    )


@pytest.mark.parametrize("service", SERVICES)
def test_service_imports_no_other_service(service: str) -> None:
    own = f"crm_{service}"
    offenders = {
        f"{path.relative_to(ROOT)}: {package}"
        for path in (ROOT / "services" / service).rglob("*.py")
        for package in imported_packages(path) & (SERVICE_PACKAGES - {own})
    }
    assert not offenders, f"{service} imports another service: {sorted(offenders)}"


def test_kernel_imports_no_service() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {package}"
        for path in (ROOT / "libs" / "kernel").rglob("*.py")
        for package in imported_packages(path) & SERVICE_PACKAGES
    }
    assert not offenders, sorted(offenders)


def test_the_check_catches_a_cross_service_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from crm_deals.models import Base\nimport crm_contacts.main\n")
    assert imported_packages(sample) >= {"crm_deals", "crm_contacts"}
