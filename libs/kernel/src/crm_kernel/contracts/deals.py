"""Events published by the deals service: pipelines (with their stages) and deals.

Every deal event carries the deal's whole current state and its `version`
(an older version never overwrites a newer one in a read model). Every event
that moves a deal between stages carries a `transition` with both stages'
positions, probabilities and kinds as they were at the move, and when the deal
entered and left them, so a reports service can compute conversion and time in
stage from the events alone, even after the pipeline is edited.
"""

from __future__ import annotations

from pydantic import BaseModel

from crm_kernel.events import IntegrationEvent


class StageState(BaseModel):
    id: str
    name: str
    position: int
    # A decimal string, 0-100 (win probability in percent).
    probability: str
    kind: str  # open, won, lost


class PipelineState(IntegrationEvent):
    """The whole current state of a pipeline with its (not deleted) stages in order."""

    id: str
    name: str
    is_default: bool
    stages: list[StageState]
    version: int
    created_at: str
    updated_at: str
    # What this change was: created, renamed, stage_added, stage_updated,
    # stages_reordered, stage_deleted.
    change: str = "created"
    # For stage_deleted: the stage removed and where its deals went.
    deleted_stage_id: str | None = None
    target_stage_id: str | None = None


class PipelineCreated(PipelineState):
    type = "crm.deals.pipeline.created"


class PipelineUpdated(PipelineState):
    type = "crm.deals.pipeline.updated"


class StageTransition(BaseModel):
    """One move of a deal: the stay it ended (from) and the stay it began (to).

    `from_*` are None when the deal was just created. `from_entered_at` to
    `left_at` is the time spent in the stage left; `entered_at` equals
    `left_at`. `skipped_stage_ids` are the open stages between the two
    positions on a forward move into an open or won stage (empty backwards
    and on a loss).
    """

    history_id: str
    pipeline_id: str
    from_stage_id: str | None = None
    from_position: int | None = None
    from_probability: str | None = None
    from_kind: str | None = None
    from_entered_at: str | None = None
    left_at: str | None = None
    to_stage_id: str
    to_position: int
    to_probability: str
    to_kind: str
    entered_at: str
    moved_by: str | None = None
    direction: str  # created, forward, backward
    skipped_stage_ids: list[str] = []
    # Why the deal moved: move, win, lose, reopen, create, stage_deleted.
    reason: str


class DealState(IntegrationEvent):
    """The whole current state of a deal, as the API shows it."""

    id: str
    title: str
    contact_id: str | None = None
    company_id: str | None = None
    pipeline_id: str
    stage_id: str
    owner_id: str
    # A decimal string in the currency's minor unit, or None when not known yet.
    amount: str | None = None
    currency: str
    expected_close_date: str | None = None
    status: str  # open, won, lost
    # A code from the service's list of lost reasons (or "other") and free text.
    lost_reason: str | None = None
    lost_comment: str | None = None
    source_campaign_id: str | None = None
    # Where the deal came from (lead source such as web_form, api, import; manual
    # when created by hand) and the lead that opened it, for lead-mix reports.
    source: str | None = None
    lead_id: str | None = None
    stage_entered_at: str
    closed_at: str | None = None
    version: int
    created_at: str
    updated_at: str


class DealCreated(DealState):
    type = "crm.deals.deal.created"
    transition: StageTransition


class DealUpdated(DealState):
    type = "crm.deals.deal.updated"
    changed_fields: list[str] = []


class DealStageChanged(DealState):
    """Every stage move, whatever caused it (move, win, lose, reopen, stage deleted)."""

    type = "crm.deals.deal.stage_changed"
    transition: StageTransition


class DealWon(DealState):
    type = "crm.deals.deal.won"
    transition: StageTransition


class DealLost(DealState):
    type = "crm.deals.deal.lost"
    transition: StageTransition


class DealReopened(DealState):
    type = "crm.deals.deal.reopened"
    transition: StageTransition


class DealOwnerChanged(DealState):
    type = "crm.deals.deal.owner_changed"
    previous_owner_id: str


class ProductState(IntegrationEvent):
    id: str
    name: str
    sku: str
    unit_price: str
    currency: str
    active: bool
    version: int


class ProductCreated(ProductState):
    type = "crm.deals.product.created"


class ProductUpdated(ProductState):
    type = "crm.deals.product.updated"


class ProposalItemState(BaseModel):
    product_id: str | None = None
    name: str
    quantity: str
    unit_price: str
    discount_percent: str
    # quantity x unit_price x (1 - discount/100), rounded half-up to the minor unit.
    line_total: str


class ProposalState(IntegrationEvent):
    """A proposal on a deal with its lines and server-computed total."""

    id: str
    deal_id: str
    owner_id: str
    currency: str
    items: list[ProposalItemState]
    total: str
    status: str  # draft, sent, accepted, rejected
    version: int
    created_at: str
    updated_at: str


class ProposalCreated(ProposalState):
    type = "crm.deals.proposal.created"


class ProposalUpdated(ProposalState):
    """A draft's lines (and so its total) were replaced."""

    type = "crm.deals.proposal.updated"


class ProposalStatusChanged(ProposalState):
    type = "crm.deals.proposal.status_changed"
    previous_status: str


class OrderState(IntegrationEvent):
    """An order and what a client notification needs: contact, total, status."""

    id: str
    deal_id: str
    proposal_id: str | None = None
    contact_id: str | None = None
    owner_id: str
    total: str
    currency: str
    status: str  # created, invoiced, paid, shipped, delivered, cancelled
    # A signed, expiring public link to the order's status page (for the client).
    status_url: str | None = None
    version: int
    created_at: str
    updated_at: str


class DealStalled(DealState):
    """An open deal stayed in its stage longer than an automation rule allows (once per stay)."""

    type = "crm.deals.deal.stalled"
    automation_id: str
    days_in_stage: int
    threshold_days: int


class OrderCreated(OrderState):
    type = "crm.deals.order.created"


class OrderStatusChanged(OrderState):
    type = "crm.deals.order.status_changed"
    previous_status: str


CONTRACTS: tuple[type[IntegrationEvent], ...] = (
    PipelineCreated,
    PipelineUpdated,
    DealCreated,
    DealUpdated,
    DealStageChanged,
    DealWon,
    DealLost,
    DealReopened,
    DealOwnerChanged,
    ProductCreated,
    ProductUpdated,
    ProposalCreated,
    ProposalUpdated,
    ProposalStatusChanged,
    OrderCreated,
    OrderStatusChanged,
    DealStalled,
)
