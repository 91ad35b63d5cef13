"""The filters every report shares (`from`, `to`, `pipeline_id`, `owner_id`, `team_id`) and visibility."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kernel.auth import Principal
from crm_kernel.db import SqlColumn
from crm_kernel.directory import owner_filter
from crm_kernel.problems import BadRequest
from crm_kernel.tables import directory_team_members as members
from crm_reports.http import require_zone


@dataclass(frozen=True)
class Filters:
    """A report's period (half-open, `from` <= t < `to`) and whose records it covers."""

    period_from: datetime | None = None
    period_to: datetime | None = None
    pipeline_id: str | None = None
    owner_id: str | None = None
    team_id: str | None = None

    def within(self, column: SqlColumn) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.period_from:
            conditions.append(column >= self.period_from)
        if self.period_to:
            conditions.append(column < self.period_to)
        return conditions

    def owners(self, principal: Principal, column: SqlColumn) -> list[ColumnElement[bool]]:
        """Records owned by someone the caller may see, narrowed to `owner_id` and `team_id`."""
        conditions = [owner_filter(principal, column)]
        if self.owner_id:
            conditions.append(column == self.owner_id)
        if self.team_id:
            conditions.append(
                column.in_(select(members.c.user_id).where(members.c.team_id == self.team_id))
            )
        return conditions

    def pipeline(self, column: SqlColumn) -> list[ColumnElement[bool]]:
        return [column == self.pipeline_id] if self.pipeline_id else []

    def previous(self) -> Filters:
        """The period of the same length just before this one (for comparisons)."""
        if not (self.period_from and self.period_to):
            raise BadRequest(
                "A comparison with the previous period needs both `from` and `to`.",
                errors=[{"field": "from", "location": "query", "message": "required"}],
            )
        length: timedelta = self.period_to - self.period_from
        return Filters(
            self.period_from - length,
            self.period_from,
            self.pipeline_id,
            self.owner_id,
            self.team_id,
        )


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value else None


def report_filters(
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
    pipeline_id: uuid.UUID | None = None,
    owner_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
) -> Filters:
    require_zone(from_=period_from, to=period_to)
    if period_from and period_to and period_to <= period_from:
        raise BadRequest(
            "`to` must be after `from`.",
            errors=[{"field": "to", "location": "query", "message": "must be after from"}],
        )
    return Filters(period_from, period_to, _text(pipeline_id), _text(owner_id), _text(team_id))


FiltersDep = Annotated[Filters, Depends(report_filters)]


async def visible_owners(
    session: AsyncSession, principal: Principal, filters: Filters, owners: set[str]
) -> set[str]:
    """Which of these owners the caller may see and the filters keep (owners are few: users)."""
    if not owners:
        return set()
    candidates = union_all(*(select(literal(o).label("owner")) for o in owners)).subquery()
    query = select(candidates.c.owner).where(*filters.owners(principal, candidates.c.owner))
    return {o for (o,) in (await session.execute(query)).all()}
