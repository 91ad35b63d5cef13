"""Who gets a new lead: a rule's distribution among a team's active reps, tags, or the fallback.

Every intake through a rule starts by bumping the rule's `leads_received` (an
UPDATE ... RETURNING), which holds the rule's row lock until the intake commits
(SQLite: the database write lock). Concurrent leads through one rule are thus
assigned one after the other, each seeing the previous one's round-robin state.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.leads.models import Lead, LeadRule
from crm_contacts.leads.schemas import RuleKind
from crm_kernel.auth import Role
from crm_kernel.tables import directory_team_members as members
from crm_kernel.tables import directory_users as users


@dataclass(frozen=True)
class LockedRule:
    id: str
    kind: str
    team_id: str | None
    routes: list[dict[str, str]]
    fallback_owner_id: str
    form_key: str | None
    pipeline_id: str | None
    default_tags: list[str]
    last_owner_id: str | None


async def lock_rule(
    session: AsyncSession, *, rule_id: str | None = None, form_key: str | None = None
) -> LockedRule | None:
    """The active rule (by id or form key), locked for this transaction; None if there is none."""
    where = LeadRule.id == rule_id if rule_id is not None else LeadRule.form_key == form_key
    row = (
        await session.execute(
            update(LeadRule)
            .where(where, LeadRule.is_active.is_(True))
            .values(leads_received=LeadRule.leads_received + 1)
            .returning(
                LeadRule.id,
                LeadRule.kind,
                LeadRule.team_id,
                LeadRule.routes,
                LeadRule.fallback_owner_id,
                LeadRule.form_key,
                LeadRule.pipeline_id,
                LeadRule.default_tags,
                LeadRule.last_owner_id,
            )
            .execution_options(synchronize_session=False)
        )
    ).first()
    return LockedRule(*row) if row is not None else None


async def _active_reps(session: AsyncSession, team_id: str) -> list[str]:
    """The team's active sales reps, in a stable order (by id)."""
    query = (
        select(users.c.id)
        .join(members, members.c.user_id == users.c.id)
        .where(
            members.c.team_id == team_id,
            users.c.is_active.is_(True),
            users.c.role == Role.SALES_REP.value,
        )
        .order_by(users.c.id)
    )
    return list(await session.scalars(query))


def _after(reps: list[str], last: str | None) -> list[str]:
    """The reps in turn order: those after `last` (by id) first, then from the start."""
    later = [rep for rep in reps if last is not None and rep > last]
    return later + [rep for rep in reps if rep not in later]


async def _open_leads(session: AsyncSession, owners: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(Lead.owner_id, func.count())
        .where(Lead.owner_id.in_(owners), Lead.status == "open")
        .group_by(Lead.owner_id)
    )
    return {owner: int(count) for owner, count in rows.all()}


async def choose_owner(session: AsyncSession, rule: LockedRule, tags: Collection[str]) -> str:
    """The owner the rule gives a lead with these tags (territory counts as a tag)."""
    if rule.kind == RuleKind.BY_TAG:
        return next(
            (r["owner_id"] for r in rule.routes if r["tag"] in tags), rule.fallback_owner_id
        )
    reps = await _active_reps(session, rule.team_id) if rule.team_id else []
    if not reps:
        return rule.fallback_owner_id
    turn = _after(reps, rule.last_owner_id)
    if rule.kind == RuleKind.ROUND_ROBIN:
        owner = turn[0]
    else:
        counts = await _open_leads(session, reps)
        # Fewest open leads; a tie goes to whoever's turn comes first.
        owner = min(turn, key=lambda rep: (counts.get(rep, 0), turn.index(rep)))
    await session.execute(
        update(LeadRule)
        .where(LeadRule.id == rule.id)
        .values(last_owner_id=owner)
        .execution_options(synchronize_session=False)
    )
    return owner
