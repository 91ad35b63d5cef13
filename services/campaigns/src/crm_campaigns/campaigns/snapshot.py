"""The audience snapshot at send start: one ledger row per reachable, consenting address.

Rules (README "dedupe"): the contact must be reachable (not deleted, merged or
erased), have an address for the channel and consent on it, and the address
must not be on the suppression list; two contacts sharing an address get one
message, to the contact with the smaller id (stable across retries).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.campaigns.models import Campaign, LedgerRow, Variant
from crm_campaigns.campaigns.state import variants_of
from crm_campaigns.common import now
from crm_campaigns.recipients.addresses import normalise
from crm_campaigns.recipients.models import Recipient, Suppression
from crm_campaigns.recipients.segments import audience_query
from crm_campaigns.templates.models import Template
from crm_campaigns.templates.rendering import validate_template
from crm_kernel.problems import Conflict

_LEDGER = cast(Table, LedgerRow.__table__)
_CHUNK = 2000


async def _freeze_variants(session: AsyncSession, campaign: Campaign) -> list[Variant]:
    """Copy the template's content into the variants: later template edits do not leak in."""
    variants = await variants_of(session, campaign.id)
    if not variants:
        variants = [Variant(id=campaign.id, campaign_id=campaign.id, name="A", position=0)]
        session.add(variants[0])
    for variant in variants:
        template_id = variant.template_id or campaign.template_id
        template = await session.get(Template, template_id) if template_id else None
        if template is None or template.deleted_at is not None:
            raise Conflict(f"The template of variant {variant.name} no longer exists.")
        variant.template_id = template.id
        variant.subject = variant.subject or template.subject
        variant.body_html = variant.body_html or template.body_html
        variant.body_text = variant.body_text or template.body_text
        validate_template(VariantSource(campaign.channel, variant))
    await session.flush()
    return variants


class VariantSource:
    """A frozen variant as a template (the shape `compile_template` reads)."""

    def __init__(self, channel: str, variant: Variant):
        self.channel = channel
        self.subject = variant.subject
        self.body_html = variant.body_html
        self.body_text = variant.body_text or ""


def _shuffle_key(campaign_id: str, contact_id: str) -> bytes:
    """A fixed pseudo-random order, so the A/B test group is a fair sample."""
    return hashlib.sha256(f"{campaign_id}:{contact_id}".encode()).digest()


async def snapshot_audience(session: AsyncSession, campaign: Campaign) -> int:
    """Write the campaign's ledger; returns the audience size."""
    variants = await _freeze_variants(session, campaign)
    query = await audience_query(
        session, campaign.segment_ids, campaign.exclude_segment_ids, campaign.rfm_groups
    )
    if campaign.channel == "email":
        address_column = Recipient.email
        query = query.where(Recipient.consent_email.is_(True), Recipient.email.is_not(None))
    else:
        address_column = Recipient.phone
        query = query.where(Recipient.consent_sms.is_(True), Recipient.phone.is_not(None))
    suppressed = set(
        (
            await session.scalars(
                select(Suppression.address).where(Suppression.channel == campaign.channel)
            )
        ).all()
    )
    chosen: dict[str, tuple[str, str]] = {}
    rows = await session.execute(
        query.with_only_columns(Recipient.id, address_column).order_by(Recipient.id)
    )
    for contact_id, address in rows:
        key = normalise(campaign.channel, address)
        if address is None or key is None or key in suppressed or key in chosen:
            continue
        chosen[key] = (contact_id, address)
    members = sorted(chosen.items(), key=lambda item: _shuffle_key(campaign.id, item[1][0]))
    test_size = len(members)
    if len(variants) > 1:
        test_size = min(
            len(members), max(len(variants), round(len(members) * campaign.ab_test_percent / 100))
        )
        if test_size < len(members):
            campaign.ab_phase = "testing"
            campaign.ab_decide_at = now() + timedelta(minutes=campaign.ab_window_minutes)
        else:
            campaign.ab_phase = "decided"
    ledger: list[dict[str, Any]] = []
    for position, (key, (contact_id, address)) in enumerate(members):
        in_test = position < test_size
        ledger.append(
            {
                "campaign_id": campaign.id,
                "contact_id": contact_id,
                "address": address,
                "address_key": key,
                "variant_id": variants[position % len(variants)].id if in_test else None,
                "in_test": in_test and len(variants) > 1,
                "status": "pending" if in_test else "held",
                "opens": 0,
                "clicks": 0,
            }
        )
    for start in range(0, len(ledger), _CHUNK):
        await session.execute(insert(_LEDGER), ledger[start : start + _CHUNK])
    campaign.audience = len(ledger)
    return len(ledger)
