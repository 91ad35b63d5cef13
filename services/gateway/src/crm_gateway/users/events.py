"""The events a user's changes publish (full state, never the password hash)."""

from __future__ import annotations

from crm_gateway.users.models import User
from crm_kernel.contracts.gateway import UserChanged, UserCreated, UserUpdated


def user_event(kind: type[UserCreated] | type[UserUpdated], user: User) -> UserChanged:
    """The event of this kind carrying the user's current state."""
    return kind(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        team_ids=user.team_ids,
        is_active=user.is_active,
        version=user.version,
    )
