"""Stage history: every stay of a deal in a stage, opened and closed by each move."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_deals.common import decimal_str
from crm_deals.deals.models import Deal, StageHistory
from crm_deals.pipelines.models import Stage
from crm_kernel.contracts.deals import StageTransition
from crm_kernel.ids import new_id


async def enter_stage(
    session: AsyncSession,
    deal: Deal,
    *,
    stages: Sequence[Stage],
    to: Stage,
    reason: str,
    actor: str | None,
    now: datetime,
    created: bool = False,
) -> StageTransition:
    """Close the deal's current stay (if any), open one in `to`, and describe the move.

    `stages` are the pipeline's live stages (for positions and skipped stages).
    The stay left ends exactly when the new one begins, so summing stays per
    stage gives exact time in stage.
    """
    by_id = {s.id: s for s in stages}
    previous: StageHistory | None = None
    if not created:
        previous = (
            await session.scalars(
                select(StageHistory)
                .where(StageHistory.deal_id == deal.id, StageHistory.left_at.is_(None))
                .order_by(StageHistory.entered_at.desc(), StageHistory.id.desc())
                .limit(1)
            )
        ).first()
    # Clocks of two replicas may differ a little: a stay never ends before it began.
    if previous is not None and now < previous.entered_at:
        now = previous.entered_at
    from_stage = by_id.get(deal.stage_id) if previous is not None else None
    if from_stage is None and previous is not None:
        from_stage = await session.get(Stage, deal.stage_id)  # deleted meanwhile
    if previous is not None:
        previous.left_at = now
    row = StageHistory(
        id=str(new_id()),
        deal_id=deal.id,
        pipeline_id=deal.pipeline_id,
        from_stage_id=previous.to_stage_id if previous else None,
        to_stage_id=to.id,
        to_position=to.position,
        to_probability=to.probability,
        reason=reason,
        entered_at=now,
        left_at=None,
        moved_by=actor,
    )
    session.add(row)
    deal.stage_id = to.id
    deal.stage_entered_at = now
    direction = "created"
    skipped: list[str] = []
    if previous is not None and from_stage is not None:
        direction = "forward" if to.position >= from_stage.position else "backward"
        # A loss ends the funnel rather than skipping the stages before it.
        if direction == "forward" and to.kind != "lost":
            skipped = [
                s.id
                for s in stages
                if from_stage.position < s.position < to.position and s.kind == "open"
            ]
    return StageTransition(
        history_id=row.id,
        pipeline_id=deal.pipeline_id,
        from_stage_id=from_stage.id if from_stage else None,
        from_position=from_stage.position if from_stage else None,
        from_probability=decimal_str(from_stage.probability) if from_stage else None,
        from_kind=from_stage.kind if from_stage else None,
        from_entered_at=previous.entered_at.isoformat() if previous else None,
        left_at=now.isoformat() if previous else None,
        to_stage_id=to.id,
        to_position=to.position,
        to_probability=decimal_str(to.probability),
        to_kind=to.kind,
        entered_at=now.isoformat(),
        moved_by=actor,
        direction=direction,
        skipped_stage_ids=skipped,
        reason=reason,
    )
