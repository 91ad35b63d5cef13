"""Event and command contracts between services, and the streams that carry them.

Contracts live here, not in the publishing service, because a consumer may
not import another service's package (SPEC section 2). Each owning service
has one event stream holding exactly its event subjects (history kept for
replay) and work-queue streams for the commands addressed to it; the subject
lists are derived from the schemas below, so publishing an undeclared type
fails loudly (no stream answers).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from crm_kernel.contracts import campaigns, contacts, deals, gateway, notifications, reports
from crm_kernel.events import IntegrationEvent

SERVICES = ("gateway", "contacts", "deals", "campaigns", "notifications", "reports")
DEAD_LETTER_STREAM = "CRM_DEAD_LETTERS"
DEAD_LETTER_PREFIX = "crm.dead_letter"

_MODULES = (gateway, contacts, deals, campaigns, notifications, reports)


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream: its name, subjects, and whether it is a work queue."""

    name: str
    subjects: tuple[str, ...]
    work_queue: bool = False


@functools.cache
def all_types() -> dict[str, type[IntegrationEvent]]:
    """Every declared event and command schema by its subject."""
    found: dict[str, type[IntegrationEvent]] = {}
    for module in _MODULES:
        for schema in getattr(module, "CONTRACTS", ()):
            if schema.type in found:
                raise ValueError(f"duplicate contract {schema.type}")
            found[schema.type] = schema
    return found


def stream_for(schema: type[IntegrationEvent]) -> str:
    """The stream a schema's messages are stored in."""
    service = schema.type.split(".")[1]
    if schema.is_command:
        return getattr(schema, "work_stream", None) or f"CRM_{service.upper()}_COMMANDS"
    return f"CRM_{service.upper()}"


def stream_specs() -> list[StreamSpec]:
    """Every stream the system uses, built from the declared contracts."""
    subjects: dict[str, list[str]] = {f"CRM_{s.upper()}": [] for s in SERVICES}
    work: set[str] = set()
    for subject, schema in sorted(all_types().items()):
        stream = stream_for(schema)
        subjects.setdefault(stream, []).append(subject)
        if schema.is_command:
            work.add(stream)
    specs = [
        StreamSpec(
            name, tuple(subs) or (f"crm.{name.removeprefix('CRM_').lower()}.none",), name in work
        )
        for name, subs in subjects.items()
    ]
    specs.append(StreamSpec(DEAD_LETTER_STREAM, (f"{DEAD_LETTER_PREFIX}.>",)))
    return specs
