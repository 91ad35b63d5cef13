"""Events published by the campaigns service: campaigns, per-recipient message facts,
unsubscribes, and marketing events.

Campaign events carry the whole current state with its `version`; message facts
are one event per recipient and fact (`unique` marks the first open/click of a
recipient, so a consumer counts unique figures without keeping sets).
"""

from __future__ import annotations

from pydantic import BaseModel

from crm_kernel.events import IntegrationEvent


class VariantState(BaseModel):
    id: str
    name: str


class CampaignState(IntegrationEvent):
    """The whole current state of a campaign, with its progress counters."""

    id: str
    name: str
    channel: str  # email, sms
    status: str  # draft, scheduled, sending, paused, sent, cancelled
    segment_ids: list[str] = []
    exclude_segment_ids: list[str] = []
    variants: list[VariantState] = []
    # Money spent on the campaign, a decimal string with an ISO 4217 currency (ROI).
    cost: str | None = None
    currency: str | None = None
    attribution_days: int = 30
    marketing_event_id: str | None = None
    audience: int = 0
    sent: int = 0
    failed: int = 0
    scheduled_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    created_by: str
    version: int
    created_at: str
    updated_at: str


class CampaignCreated(CampaignState):
    type = "crm.campaigns.campaign.created"


class CampaignUpdated(CampaignState):
    """Any change of definition, schedule or status (paused, resumed, cancelled...)."""

    type = "crm.campaigns.campaign.updated"


class CampaignProgress(CampaignState):
    """Sending moved on (at most about once a second per campaign): for the live stream."""

    type = "crm.campaigns.campaign.progress"


class CampaignSent(CampaignState):
    """Every ledger row is final: the campaign is `sent`."""

    type = "crm.campaigns.campaign.sent"


class MessageFact(IntegrationEvent):
    """One fact about the message a campaign sent to one contact."""

    campaign_id: str
    variant_id: str | None = None
    contact_id: str
    channel: str
    at: str
    # First open (or click) of this recipient in this campaign.
    unique: bool = True
    url: str | None = None  # for clicks
    reason: str | None = None  # for bounces and failures


class MessageSent(MessageFact):
    type = "crm.campaigns.message.sent"


class MessageDelivered(MessageFact):
    type = "crm.campaigns.message.delivered"


class MessageFailed(MessageFact):
    type = "crm.campaigns.message.failed"


class MessageBounced(MessageFact):
    type = "crm.campaigns.message.bounced"


class MessageComplained(MessageFact):
    type = "crm.campaigns.message.complained"


class MessageOpened(MessageFact):
    type = "crm.campaigns.message.opened"


class MessageClicked(MessageFact):
    type = "crm.campaigns.message.clicked"


class RecipientUnsubscribed(IntegrationEvent):
    """A recipient unsubscribed with a campaign's link: contacts records the consent change."""

    type = "crm.campaigns.recipient.unsubscribed"
    campaign_id: str | None = None
    contact_id: str
    channel: str  # email, sms
    email: str | None = None
    phone: str | None = None
    at: str


class MarketingEventState(IntegrationEvent):
    """A seminar, webinar or exhibition with its attendance counters."""

    id: str
    name: str
    kind: str  # seminar, webinar, exhibition, other
    starts_at: str
    place: str | None = None
    capacity: int | None = None
    invited: int = 0
    registered: int = 0
    attended: int = 0
    version: int
    created_at: str
    updated_at: str


class MarketingEventCreated(MarketingEventState):
    type = "crm.campaigns.event.created"


class MarketingEventUpdated(MarketingEventState):
    type = "crm.campaigns.event.updated"


class ParticipantChanged(IntegrationEvent):
    """A contact was invited to, registered for, or attended a marketing event."""

    event_id: str
    contact_id: str
    at: str


class ParticipantInvited(ParticipantChanged):
    type = "crm.campaigns.participant.invited"


class ParticipantRegistered(ParticipantChanged):
    type = "crm.campaigns.participant.registered"


class ParticipantAttended(ParticipantChanged):
    type = "crm.campaigns.participant.attended"


CONTRACTS = (
    CampaignCreated,
    CampaignUpdated,
    CampaignProgress,
    CampaignSent,
    MessageSent,
    MessageDelivered,
    MessageFailed,
    MessageBounced,
    MessageComplained,
    MessageOpened,
    MessageClicked,
    RecipientUnsubscribed,
    MarketingEventCreated,
    MarketingEventUpdated,
    ParticipantInvited,
    ParticipantRegistered,
    ParticipantAttended,
)
