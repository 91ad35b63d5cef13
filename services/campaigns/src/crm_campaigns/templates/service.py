"""Template use cases: create, update, soft delete, preview; and the context of one recipient."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_campaigns.common import now
from crm_campaigns.recipients.models import Recipient
from crm_campaigns.recipients.segments import reachable
from crm_campaigns.templates.models import Template
from crm_campaigns.templates.rendering import (
    RenderedMessage,
    compile_template,
    contact_context,
    validate_template,
)
from crm_campaigns.templates.schemas import TemplateCreate, TemplateUpdate
from crm_kernel.auth import Principal
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.problems import NotFound
from crm_kernel.tables import directory_users
from crm_kernel.versioning import check_version


async def get_template(session: AsyncSession, template_id: str) -> Template:
    template = await session.get(Template, template_id)
    if template is None or template.deleted_at is not None:
        raise NotFound("No such template.")
    return template


async def create_template(
    session: AsyncSession, *, body: TemplateCreate, principal: Principal
) -> Template:
    """Validate (unknown variables, injection) and store a template."""
    validate_template(body)
    moment = now()
    template = Template(
        id=str(new_id()),
        **body.model_dump(),
        created_by=principal.user_id,
        version=1,
        created_at=moment,
        updated_at=moment,
    )
    session.add(template)
    return template


async def update_template(
    session: AsyncSession, *, template_id: str, body: TemplateUpdate, if_match: int | None
) -> Template:
    template = await get_template(session, template_id)
    check_version(template.version, if_match, body.version)
    validate_template(body)
    for field, value in body.model_dump(exclude={"version"}).items():
        setattr(template, field, value)
    template.version += 1
    template.updated_at = now()
    return template


async def delete_template(session: AsyncSession, *, template_id: str) -> None:
    """Soft delete: campaigns that used it keep their copy (compiled at their send)."""
    template = await get_template(session, template_id)
    template.deleted_at = now()
    template.version += 1


async def owner_names(session: AsyncSession, owner_ids: set[str]) -> dict[str, tuple[str, str]]:
    """Owner id -> (full name, e-mail), from the kernel's user directory."""
    if not owner_ids:
        return {}
    rows = await session.execute(
        select(directory_users.c.id, directory_users.c.full_name, directory_users.c.email).where(
            directory_users.c.id.in_(owner_ids)
        )
    )
    return {r.id: (r.full_name, r.email) for r in rows}


async def recipient_context(session: AsyncSession, contact: Recipient) -> dict[str, Any]:
    owners = await owner_names(session, {contact.owner_id})
    name, email = owners.get(contact.owner_id, (None, None))
    return contact_context(contact, owner_name=name, owner_email=email)


async def preview(
    session: AsyncSession, *, template_id: str, contact_id: str, principal: Principal
) -> RenderedMessage:
    """The template rendered for a contact the caller may see (404 otherwise)."""
    template = await get_template(session, template_id)
    contact = await session.scalar(
        select(Recipient).where(
            Recipient.id == contact_id, reachable(), owner_filter(principal, Recipient.owner_id)
        )
    )
    if contact is None:
        raise NotFound("No such contact.")
    context = await recipient_context(session, contact)
    context["unsubscribe_url"] = "#unsubscribe"
    context["campaign"] = {"name": "Preview"}
    return compile_template(template).render(context)
