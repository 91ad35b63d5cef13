"""Running stage-entry rules: a deal entered a stage -> tasks, messages, notices, once per stay.

Driven by the service's own `deal.created` / `deal.stage_changed` events, in
the consumer's transaction: the run row (primary key rule + stay) and the
commands it produces commit together, so a redelivered or re-published event
finds the row and sends nothing again, while a new entry into the stage (a new
stay) runs the rule again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_deals.automations.models import Automation, AutomationRun
from crm_deals.automations.templates import TemplateError, render
from crm_deals.contact_replica import ContactRef
from crm_deals.pipelines.models import Stage
from crm_kernel.contracts.contacts import CreateTask
from crm_kernel.contracts.deals import DealState, StageTransition
from crm_kernel.contracts.notifications import SendEmail, SendInApp, SendSms
from crm_kernel.events import IntegrationEvent
from crm_kernel.outbox import add_event


@dataclass(frozen=True)
class Outcome:
    """What a rule does for one stay: a command to send, or why it skipped."""

    command: IntegrationEvent | None = None
    skipped: str | None = None


async def claim_run(
    session: AsyncSession, rule_id: str, stay_id: str, deal_id: str, skipped: str | None
) -> bool:
    """Record that the rule ran for this stay; False if it already had (then do nothing)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(AutomationRun)
        .values(
            automation_id=rule_id,
            stay_id=stay_id,
            deal_id=deal_id,
            outcome="skipped" if skipped else "done",
            detail=skipped,
            at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def template_context(deal: DealState, stage: Stage | None, contact: ContactRef | None) -> Any:
    """What templates may use: plain values only (the sandbox sees nothing else)."""
    return {
        "deal": {
            "id": deal.id,
            "title": deal.title,
            "amount": deal.amount or "",
            "currency": deal.currency,
            "stage": stage.name if stage else "",
            "status": deal.status,
            "expected_close_date": deal.expected_close_date or "",
        },
        "contact": {
            "first_name": contact.first_name if contact else "",
            "last_name": contact.last_name if contact else "",
            "name": contact.name if contact else "",
        },
    }


def _outcome(
    rule: Automation,
    deal: DealState,
    transition: StageTransition,
    contact: ContactRef | None,
    context: Any,
) -> Outcome:
    params = rule.params
    key = f"{rule.id}:{deal.id}:{transition.history_id}"
    source = {"source_type": "deal", "source_id": deal.id}
    try:
        if rule.action == "create_task":
            due = datetime.fromisoformat(transition.entered_at) + timedelta(
                minutes=params["due_in_minutes"]
            )
            return Outcome(
                CreateTask(
                    key=key,
                    title=render(params["title"], context)[:300],
                    due_at=due.isoformat(),
                    assignee_id=deal.owner_id,
                    contact_id=deal.contact_id,
                    deal_id=deal.id,
                    remind_before_minutes=params.get("remind_before_minutes"),
                )
            )
        if rule.action == "notify":
            return Outcome(
                SendInApp(
                    key=key,
                    user_id=params.get("user_id"),
                    role=params.get("role"),
                    title=render(params["title"], context),
                    body=render(params.get("body", ""), context),
                    link=f"/deals/{deal.id}",
                    **source,
                )
            )
        channel = "email" if rule.action == "send_email" else "sms"
        if deal.contact_id is None:
            return Outcome(skipped="the deal has no contact")
        if contact is None:
            return Outcome(skipped="contact not known to deals yet")
        consented = contact.consent_email if channel == "email" else contact.consent_sms
        if not consented:
            return Outcome(skipped=f"no {channel} consent")
        address = contact.email if channel == "email" else contact.phone
        if not address:
            return Outcome(
                skipped=f"the contact has no {'e-mail' if channel == 'email' else 'phone'}"
            )
        if channel == "email":
            return Outcome(
                SendEmail(
                    key=key,
                    to=address,
                    subject=render(params["subject"], context)[:300],
                    body_text=render(params["body"], context),
                    contact_id=contact.id,
                    **source,
                )
            )
        return Outcome(
            SendSms(
                key=key,
                to=address,
                text=render(params["body"], context),
                contact_id=contact.id,
                **source,
            )
        )
    except TemplateError as exc:
        return Outcome(skipped=f"template error: {exc}"[:200])


async def run_entry_rules(
    session: AsyncSession, deal: DealState, transition: StageTransition
) -> None:
    """Run every active entry rule of the stage the deal entered, once for this stay."""
    rules = (
        await session.scalars(
            select(Automation)
            .where(
                Automation.stage_id == transition.to_stage_id,
                Automation.active.is_(True),
                Automation.action != "stalled",
            )
            .order_by(Automation.created_at, Automation.id)
        )
    ).all()
    if not rules:
        return
    contact = await session.get(ContactRef, deal.contact_id) if deal.contact_id else None
    stage = await session.get(Stage, transition.to_stage_id)
    context = template_context(deal, stage, contact)
    for rule in rules:
        outcome = _outcome(rule, deal, transition, contact, context)
        claimed = await claim_run(session, rule.id, transition.history_id, deal.id, outcome.skipped)
        if claimed and outcome.command is not None:
            await add_event(session, outcome.command, subject=deal.id)
