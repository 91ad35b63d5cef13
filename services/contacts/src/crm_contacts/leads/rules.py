"""Lead rule use cases (admins): which team, tags or fallback owner a lead goes to."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts.audit.service import audit_change, record
from crm_contacts.common import utcnow
from crm_contacts.leads.models import LeadRule
from crm_contacts.leads.schemas import LeadRuleCreate, LeadRuleRead, LeadRuleUpdate, RuleKind
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.ids import new_id
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.problems import Conflict, NotFound, Unprocessable
from crm_kernel.versioning import check_version

RECORD_TYPE = "lead_rule"
# Fields a PATCH may leave out but not set to null.
_NOT_NULL = ("name", "fallback_owner_id", "is_active", "routes", "default_tags")


def to_read(rule: LeadRule) -> LeadRuleRead:
    return LeadRuleRead.model_validate(rule)


def _form_key_taken(key: str | None) -> Conflict:
    return Conflict(
        f"Another lead rule has the form key {key!r}.",
        errors=[{"field": "form_key", "location": "body", "message": "already in use"}],
    )


async def _load(session: AsyncSession, rule_id: str) -> LeadRule:
    rule = await session.get(LeadRule, rule_id)
    if rule is None:
        raise NotFound(f"No lead rule {rule_id}.")
    return rule


async def create_rule(*, db: Database, principal: Principal, data: LeadRuleCreate) -> LeadRuleRead:
    now = utcnow()
    try:
        async with db.transaction() as session:
            rule = LeadRule(
                id=str(new_id()),
                name=data.name,
                kind=data.kind.value,
                team_id=str(data.team_id) if data.team_id else None,
                routes=[r.model_dump(mode="json") for r in data.routes],
                fallback_owner_id=str(data.fallback_owner_id),
                form_key=data.form_key,
                pipeline_id=str(data.pipeline_id) if data.pipeline_id else None,
                default_tags=sorted(set(data.default_tags)),
                is_active=data.is_active,
                leads_received=0,
                version=1,
                created_at=now,
                updated_at=now,
            )
            session.add(rule)
            await session.flush()
            read = to_read(rule)
            audit_change(session, principal, RECORD_TYPE, "create", None, read)
    except IntegrityError as exc:
        raise _form_key_taken(data.form_key) from exc
    return read


async def get_rule(*, db: Database, rule_id: str) -> LeadRuleRead:
    async with db.session() as session:
        return to_read(await _load(session, rule_id))


async def list_rules(*, db: Database, limit: int, cursor: str | None) -> Page[LeadRuleRead]:
    keys = parse_sort(None, {"created_at": LeadRule.created_at}, "created_at", LeadRule.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(
            session, select(LeadRule), keys, limit=limit, cursor=cursor
        )
    return Page[LeadRuleRead](items=[to_read(r[0]) for r in rows], next_cursor=next_cursor)


async def update_rule(
    *,
    db: Database,
    principal: Principal,
    rule_id: str,
    data: LeadRuleUpdate,
    expected_version: int | None,
) -> LeadRuleRead:
    sent = data.model_fields_set - {"version"}
    try:
        async with db.transaction() as session:
            rule = await _load(session, rule_id)
            check_version(rule.version, expected_version, data.version)
            before = to_read(rule)
            for name in sent:
                value = getattr(data, name)
                if value is None and name in _NOT_NULL:
                    raise Unprocessable(
                        f"{name} may be left out but not null.",
                        errors=[{"field": name, "location": "body", "message": "not null"}],
                    )
                if name == "routes":
                    value = [r.model_dump(mode="json") for r in data.routes or []]
                elif name == "default_tags":
                    value = sorted(set(value))
                elif value is not None and name in ("team_id", "fallback_owner_id", "pipeline_id"):
                    value = str(value)
                setattr(rule, name, value)
            if rule.kind == RuleKind.BY_TAG and not rule.routes:
                raise Unprocessable(
                    "A by_tag rule needs routes.",
                    errors=[{"field": "routes", "location": "body", "message": "empty"}],
                )
            if rule.kind != RuleKind.BY_TAG and not rule.team_id:
                raise Unprocessable(
                    f"A {rule.kind} rule needs team_id.",
                    errors=[{"field": "team_id", "location": "body", "message": "required"}],
                )
            rule.version += 1
            rule.updated_at = utcnow()
            await session.flush()
            read = to_read(rule)
            audit_change(session, principal, RECORD_TYPE, "update", before, read)
    except IntegrityError as exc:
        raise _form_key_taken(data.form_key) from exc
    return read


async def delete_rule(*, db: Database, principal: Principal, rule_id: str) -> None:
    """Remove a rule (its leads keep its id); its form key then answers 404."""
    async with db.transaction() as session:
        rule = await _load(session, rule_id)
        before = to_read(rule)
        await session.execute(delete(LeadRule).where(LeadRule.id == rule_id))
        record(
            session,
            actor_id=principal.user_id,
            action="delete",
            record_type=RECORD_TYPE,
            record_id=rule_id,
            before=before,
            after=None,
        )
