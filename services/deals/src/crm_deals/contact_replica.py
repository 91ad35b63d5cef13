"""The few facts about contacts this service keeps from contact events: name and owner (newest version).

Kept for the board (a card shows its contact's name) without calling the
contacts service. Deals accept contact ids not (yet) known here, since events
may lag behind the request that names the contact.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Integer, String, Table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_deals.models import Base
from crm_kernel.contracts.contacts import ContactState
from crm_kernel.db import upsert_if_newer


class ContactRef(Base):
    __tablename__ = "contact_refs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(201))
    owner_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)


def display_name(contact: ContactState) -> str:
    return " ".join(part for part in (contact.first_name, contact.last_name) if part)


async def keep_contacts(session: AsyncSession, contacts: list[ContactState]) -> None:
    """Keep each contact's newest name and owner; a late or redelivered event changes nothing."""
    table = cast(Table, ContactRef.__table__)
    for c in contacts:
        row = {"id": c.id, "name": display_name(c), "owner_id": c.owner_id, "version": c.version}
        await upsert_if_newer(session, table, row, key=["id"], version="version")
