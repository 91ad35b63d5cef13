"""The events a team's changes publish."""

from __future__ import annotations

from crm_gateway.teams.models import Team
from crm_kernel.contracts.gateway import TeamChanged, TeamCreated, TeamUpdated


def team_event(kind: type[TeamCreated] | type[TeamUpdated], team: Team) -> TeamChanged:
    """The event of this kind carrying the team's current state."""
    return kind(id=team.id, name=team.name, version=team.version)
