"""Helpers for the reports service's tests: deal journeys as events, and waiting for the consumer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crm_kernel.bus import Bus
from crm_kernel.contracts.deals import (
    DealCreated,
    DealStageChanged,
    PipelineCreated,
    StageState,
    StageTransition,
)
from crm_kernel.contracts.gateway import UserCreated
from crm_kernel.events import IntegrationEvent


@dataclass
class Pipeline:
    """A pipeline's stages: id -> (position, probability, kind)."""

    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    stages: dict[str, tuple[int, str, str]] = field(default_factory=dict)

    def created(self, at: datetime) -> PipelineCreated:
        return PipelineCreated(
            id=self.id,
            name="P",
            is_default=False,
            version=1,
            created_at=at.isoformat(),
            updated_at=at.isoformat(),
            stages=[
                StageState(id=s, name=f"S{p}", position=p, probability=prob, kind=k)
                for s, (p, prob, k) in self.stages.items()
            ],
        )


def journey(
    pipeline: Pipeline,
    deal_id: str,
    owner: str,
    steps: list[tuple[str, float]],
    *,
    start: datetime,
    amount: str = "100.00",
    currency: str = "RUB",
    contact_id: str | None = None,
    **extra: Any,
) -> list[IntegrationEvent]:
    """The events of a deal visiting `steps` (stage, days after `start`) in order, one version each."""
    events: list[IntegrationEvent] = []
    previous: tuple[str, datetime] | None = None
    created = start + timedelta(days=steps[0][1])
    for version, (stage, days) in enumerate(steps, start=1):
        at = start + timedelta(days=days)
        position, probability, kind = pipeline.stages[stage]
        move = StageTransition(
            history_id=str(uuid.uuid4()),
            pipeline_id=pipeline.id,
            to_stage_id=stage,
            to_position=position,
            to_probability=probability,
            to_kind=kind,
            entered_at=at.isoformat(),
            from_stage_id=previous[0] if previous else None,
            from_entered_at=previous[1].isoformat() if previous else None,
            left_at=at.isoformat() if previous else None,
            direction="forward" if previous else "created",
            reason="move" if previous else "create",
        )
        status = {"won": "won", "lost": "lost"}.get(kind, "open")
        fields: dict[str, Any] = {
            "id": deal_id,
            "title": "D",
            "pipeline_id": pipeline.id,
            "stage_id": stage,
            "owner_id": owner,
            "amount": amount,
            "currency": currency,
            "contact_id": contact_id,
            "status": status,
            "stage_entered_at": at.isoformat(),
            "closed_at": at.isoformat() if status != "open" else None,
            "version": version,
            "created_at": created.isoformat(),
            "updated_at": at.isoformat(),
            "transition": move,
            **extra,
        }
        events.append(DealStageChanged(**fields) if previous else DealCreated(**fields))
        previous = (stage, at)
    return events


def user(user_id: str, role: str, teams: list[str], email: str | None = None) -> UserCreated:
    return UserCreated(
        id=user_id,
        email=email or f"{user_id[:8]}@example.com",
        full_name=user_id[:8],
        role=role,
        team_ids=teams,
        is_active=True,
        version=1,
    )


async def caught_up(bus: Bus, *streams: str) -> bool:
    """Whether the reports consumer has applied everything published on these streams."""
    for stream in streams:
        info = await bus.js.consumer_info(stream, "reports")
        if info.num_pending or info.num_ack_pending:
            return False
    return True
