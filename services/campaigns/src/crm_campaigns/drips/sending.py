"""A drip's send step: the contact looked up, the template rendered, a bulk command queued.

Each step has its own tracking id (`track_id`), so a branch reads the open or
click of the step's e-mail from its ledger row (see `messages`). SMS has no
opens: a branch after an SMS takes `else`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.drips.messages import Message, queue_message, tracking_id
from crm_campaigns.drips.models import DripEnrolment, DripSend, DripSequence
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.recipients.segments import reachable
from crm_campaigns.templates.models import Template
from crm_campaigns.templates.rendering import compile_template
from crm_campaigns.templates.service import recipient_context
from crm_campaigns.tracking.links import Links
from crm_kernel.settings import ServiceSettings

# How long a send waits for an enrolled contact to reach the directory before skipping it.
REPLICATION_GRACE = timedelta(hours=1)


def track_id(sequence_id: str, step: int) -> str:
    """The campaign id a step's messages carry in tracking links and the ledger."""
    return tracking_id(f"{sequence_id}:{step}")


class NotReplicatedYet(Exception):
    """The contact's first event has not reached the directory yet: try the step again soon."""


async def _skip(session: AsyncSession, send: DripSend, reason: str) -> None:
    send.status, send.reason = "skipped", reason
    session.add(send)


async def send_template(
    session: AsyncSession,
    settings: ServiceSettings,
    *,
    sequence: DripSequence,
    enrolment: DripEnrolment,
    template_id: str,
    key: str,
    now: datetime,
) -> None:
    """Queue the step's message (or record why not) in the caller's transaction."""
    template = await session.get(Template, template_id)
    if template is None or template.deleted_at is not None:
        raise LookupError(f"template {template_id} no longer exists")
    channel = template.channel
    send = DripSend(
        enrolment_id=enrolment.id,
        step=enrolment.step,
        key=key,
        sequence_id=sequence.id,
        contact_id=enrolment.contact_id,
        channel=channel,
        template_id=template_id,
        track_id=track_id(sequence.id, enrolment.step),
        at=now,
    )
    contact = await session.scalar(
        select(Recipient).where(Recipient.id == enrolment.contact_id, reachable())
    )
    if contact is None:
        known = await session.get(Recipient, enrolment.contact_id) is not None
        if not known and now - enrolment.enrolled_at < REPLICATION_GRACE:
            raise NotReplicatedYet(enrolment.contact_id)
        return await _skip(session, send, "contact_gone")
    context: dict[str, Any] = await recipient_context(session, contact)
    context["campaign"] = {"name": sequence.name}
    message = Message(
        key=key,
        track_id=send.track_id,
        source_type="drip",
        source_id=sequence.id,
        fallback_subject=sequence.name,
    )
    reason = await queue_message(
        session,
        Links(settings),
        contact=contact,
        template=compile_template(template),
        context=context,
        message=message,
        now=now,
    )
    send.status, send.reason = ("skipped", reason) if reason else ("queued", None)
    session.add(send)
