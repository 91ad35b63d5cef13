"""The few facts about contacts this service keeps from contact events (newest version wins).

Name and owner for the board; first/last name, address, phone and consent for
pipeline automations (templates, and never messaging a contact who did not
consent). Deals accept contact ids not (yet) known here, since events may lag
behind the request that names the contact.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Boolean, Integer, String, Table, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_deals.models import Base
from crm_kernel.contracts.contacts import ContactErased, ContactState
from crm_kernel.db import upsert, upsert_if_newer

# An erased contact's row keeps this version, so no late event of the
# contact (whose versions are all lower) can bring its personal data back.
ERASED_VERSION = 2**31 - 1


class ContactRef(Base):
    __tablename__ = "contact_refs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(201))
    owner_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)


def display_name(contact: ContactState) -> str:
    return " ".join(part for part in (contact.first_name, contact.last_name) if part)


async def keep_contacts(session: AsyncSession, contacts: list[ContactState]) -> None:
    """Keep each contact's newest facts; a late or redelivered event changes nothing."""
    table = cast(Table, ContactRef.__table__)
    for c in contacts:
        row = {
            "id": c.id,
            "name": display_name(c),
            "owner_id": c.owner_id,
            "version": c.version,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "email": c.email,
            "phone": c.phone,
            # A deleted contact is not messaged by automations.
            "consent_email": c.consent.email and c.deleted_at is None,
            "consent_sms": c.consent.sms and c.deleted_at is None,
        }
        await upsert_if_newer(session, table, row, key=["id"], version="version")


async def forget_merged(session: AsyncSession, merged_id: str) -> None:
    """A contact merged into another is gone: its replica row goes with it."""
    await session.execute(delete(ContactRef).where(ContactRef.id == merged_id))


async def erase_contact(session: AsyncSession, event: ContactErased) -> None:
    """Drop the person's personal data (names, address, phone, consent); keep the owner.

    A contact not known here yet gets an empty tombstone, so its late
    `created` event cannot bring the data back either.
    """
    erased = {
        "name": "",
        "first_name": None,
        "last_name": None,
        "email": None,
        "phone": None,
        "consent_email": False,
        "consent_sms": False,
        "version": ERASED_VERSION,
    }
    table = cast(Table, ContactRef.__table__)
    await upsert(
        session, table, {"id": event.id, "owner_id": "", **erased}, key=["id"], update=list(erased)
    )


class CampaignRef(Base):
    """Ids of the campaigns that exist: a lead's `utm_campaign` names one (or not)."""

    __tablename__ = "campaign_refs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
