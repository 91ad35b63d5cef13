"""Stream positions: one sequence per event stream, as the SSE `id:` (Last-Event-ID)."""

from __future__ import annotations

from crm_kernel.contracts import SERVICES

# The event stream of each service (`CRM_<SERVICE>`); commands are never streamed.
STREAMS: dict[str, str] = {service: f"CRM_{service.upper()}" for service in SERVICES}

Positions = dict[str, int]


def encode(positions: Positions) -> str:
    """`gateway:12,contacts:40,...`: how far each stream has been considered for the client."""
    return ",".join(f"{service}:{positions.get(service, 0)}" for service in STREAMS)


def decode(value: str | None) -> Positions | None:
    """The positions in a Last-Event-ID (None: absent or not ours, so no replay)."""
    if not value or len(value) > 1000:
        return None
    positions: Positions = {}
    for part in value.split(","):
        service, _, seq = part.strip().partition(":")
        if service not in STREAMS or not seq.isdigit():
            return None
        positions[service] = int(seq)
    return positions
