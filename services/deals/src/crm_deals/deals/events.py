"""The events deals publish: the deal's whole state, plus what the change was."""

from __future__ import annotations

from typing import Any

from crm_deals.deals.models import Deal
from crm_deals.money import money_str
from crm_kernel.contracts.deals import DealState


def deal_state(deal: Deal) -> dict[str, Any]:
    """The deal as events (and the API) show it, JSON-ready."""
    return {
        "id": deal.id,
        "title": deal.title,
        "contact_id": deal.contact_id,
        "company_id": deal.company_id,
        "pipeline_id": deal.pipeline_id,
        "stage_id": deal.stage_id,
        "owner_id": deal.owner_id,
        "amount": money_str(deal.amount, deal.currency),
        "currency": deal.currency,
        "expected_close_date": (
            deal.expected_close_date.isoformat() if deal.expected_close_date else None
        ),
        "status": deal.status,
        "lost_reason": deal.lost_reason,
        "lost_comment": deal.lost_comment,
        "source_campaign_id": deal.source_campaign_id,
        "source": deal.source,
        "lead_id": deal.lead_id,
        "stage_entered_at": deal.stage_entered_at.isoformat(),
        "closed_at": deal.closed_at.isoformat() if deal.closed_at else None,
        "version": deal.version,
        "created_at": deal.created_at.isoformat(),
        "updated_at": deal.updated_at.isoformat(),
    }


def deal_event(schema: type[DealState], deal: Deal, **extra: Any) -> DealState:
    """An event of `schema` carrying the deal's state (flushed: `version` is the new one)."""
    return schema.model_validate({**deal_state(deal), **extra})
