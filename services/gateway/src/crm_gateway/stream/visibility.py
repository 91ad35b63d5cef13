"""Which bus events a connected user may see: the services' visibility rules, per event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_kernel.auth import Principal, Role

DEAL_EVENTS = "crm.deals.deal."
LEAD_RECEIVED = "crm.contacts.lead.received"
IN_APP_CREATED = "crm.notifications.in_app.created"
CAMPAIGN_PROGRESS = "crm.campaigns.campaign.progress"


@dataclass
class Viewer:
    """A connected user: who they are and, for a head of sales, whose records they manage."""

    principal: Principal
    managed: set[str] = field(default_factory=set)

    def sees_owner(self, owner_id: Any) -> bool:
        """The kernel's owner rule (`crm_kernel.directory.owner_filter`) on one owner."""
        if self.principal.sees_every_owner() or owner_id == self.principal.user_id:
            return True
        return self.principal.role is Role.HEAD_OF_SALES and owner_id in self.managed

    def sees(self, event_type: str, data: dict[str, Any]) -> bool:
        """Admins see everything; others only the kinds of events below, when they concern them."""
        role = self.principal.role
        if role is Role.ADMIN:
            return True
        if event_type.startswith(DEAL_EVENTS):
            # A deal handed to someone else is still news to its previous owner.
            return self.sees_owner(data.get("owner_id")) or (
                "previous_owner_id" in data and self.sees_owner(data["previous_owner_id"])
            )
        if event_type == LEAD_RECEIVED:
            # Leads go to their owner and the heads above them, not to marketers.
            owner = data.get("owner_id")
            return owner == self.principal.user_id or (
                role is Role.HEAD_OF_SALES and owner in self.managed
            )
        if event_type == IN_APP_CREATED:
            return data.get("user_id") == self.principal.user_id
        if event_type == CAMPAIGN_PROGRESS:
            return role is Role.MARKETER
        return False
