"""Events published by the gateway: users and teams (other services keep a directory)."""

from __future__ import annotations

from crm_kernel.events import IntegrationEvent


class UserChanged(IntegrationEvent):
    """A user was created or changed; carries the whole current state."""

    id: str
    email: str
    full_name: str
    role: str
    team_ids: list[str]
    is_active: bool
    version: int


class UserCreated(UserChanged):
    type = "crm.gateway.user.created"


class UserUpdated(UserChanged):
    type = "crm.gateway.user.updated"


class TeamChanged(IntegrationEvent):
    id: str
    name: str
    version: int


class TeamCreated(TeamChanged):
    type = "crm.gateway.team.created"


class TeamUpdated(TeamChanged):
    type = "crm.gateway.team.updated"


class UserOffboarded(IntegrationEvent):
    """A user left: deactivated, sessions and API keys revoked.

    Contacts and deals reassign everything the user owns to `successor_id`.
    """

    type = "crm.gateway.user.offboarded"
    user_id: str
    successor_id: str
    actor_id: str
    at: str


CONTRACTS = (UserCreated, UserUpdated, TeamCreated, TeamUpdated, UserOffboarded)
