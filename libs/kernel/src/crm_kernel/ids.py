"""Time-ordered identifiers (UUIDv7) for records and events."""

from __future__ import annotations

import uuid

import uuid6


def new_id() -> uuid.UUID:
    """A new UUIDv7: unique, and sorting by it sorts by creation time."""
    return uuid.UUID(int=uuid6.uuid7().int)
