"""Helpers for tests of the contacts service (this package's and cross-service ones)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import nats
import nats.js.errors

from crm_kernel.auth import Role
from crm_kernel.contracts.gateway import UserCreated
from crm_kernel.events import Envelope
from crm_kernel.testing import issue_token, wait_until

# Reads the envelopes published so far, optionally only of some types.
Events = Callable[..., Awaitable[list[Envelope]]]


def auth(
    role: Role = Role.ADMIN, user_id: str | None = None, team_ids: tuple[str, ...] = ()
) -> dict[str, str]:
    """Headers with a token as the gateway would issue it."""
    return {"Authorization": f"Bearer {issue_token(role, user_id, team_ids)}"}


def stream_reader(nats_url: str, stream: str = "CRM_CONTACTS") -> Events:
    """A function returning every envelope in a stream (of the types given), in order."""

    async def read(*types: str) -> list[Envelope]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                return []
            found = []
            # An empty stream reports sequence 0, which get_msg refuses.
            for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
                message = await js.get_msg(stream, seq)
                if message.data:
                    envelope = Envelope.from_bytes(message.data)
                    if not types or envelope.type in types:
                        found.append(envelope)
            return found
        finally:
            await nc.close()

    return read


async def wait_for_events(events: Events, count: int, *types: str) -> list[Envelope]:
    """Poll until at least `count` envelopes of these types are in the stream."""

    async def enough() -> list[Envelope] | None:
        found = await events(*types)
        return found if len(found) >= count else None

    found: list[Envelope] = await wait_until(
        enough, timeout=30, message=f"{count} events of {types or 'any type'}"
    )
    return found


def user_created(user_id: str, role: Role, team_ids: list[str]) -> UserCreated:
    """The gateway's event for a new user (feeds this service's directory)."""
    return UserCreated(
        id=user_id,
        email=f"{user_id}@example.com",
        full_name="U",
        role=role,
        team_ids=team_ids,
        is_active=True,
        version=1,
    )
