"""`/templates`: marketers and admins write, every staff member reads and previews."""

from __future__ import annotations

from fastapi import APIRouter, Response

from crm_campaigns.common import MarketingUser, parse_id
from crm_campaigns.templates import service
from crm_campaigns.templates.models import Template
from crm_campaigns.templates.schemas import (
    PreviewRead,
    PreviewRequest,
    TemplateCreate,
    TemplateRead,
    TemplateUpdate,
)
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import Page, paginate, parse_sort
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/templates", tags=["templates"])


def _read(template: Template) -> TemplateRead:
    return TemplateRead.model_validate(template, from_attributes=True)


@router.post("", status_code=201)
async def create_template(
    body: TemplateCreate, db: DatabaseDep, user: MarketingUser, response: Response
) -> TemplateRead:
    async with db.transaction() as session:
        template = await service.create_template(session, body=body, principal=user)
    response.headers["ETag"] = etag(template.version)
    return _read(template)


@router.get("")
async def list_templates(
    db: DatabaseDep,
    user: CurrentUser,
    limit: int = 50,
    cursor: str | None = None,
    channel: str | None = None,
) -> Page[TemplateRead]:
    query = Template.__table__.select().where(Template.deleted_at.is_(None))
    if channel:
        query = query.where(Template.channel == channel)
    keys = parse_sort(None, {"created_at": Template.created_at}, "-created_at", Template.id)
    async with db.session() as session:
        rows, next_cursor = await paginate(session, query, keys, limit=limit, cursor=cursor)
    items = [TemplateRead.model_validate(dict(r._mapping)) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{template_id}")
async def read_template(
    template_id: str, db: DatabaseDep, user: CurrentUser, response: Response
) -> TemplateRead:
    async with db.session() as session:
        template = await service.get_template(session, parse_id(template_id, "template"))
    response.headers["ETag"] = etag(template.version)
    return _read(template)


@router.put("/{template_id}")
async def update_template(
    template_id: str,
    body: TemplateUpdate,
    db: DatabaseDep,
    user: MarketingUser,
    if_match: IfMatch,
    response: Response,
) -> TemplateRead:
    async with db.transaction() as session:
        template = await service.update_template(
            session, template_id=parse_id(template_id, "template"), body=body, if_match=if_match
        )
    response.headers["ETag"] = etag(template.version)
    return _read(template)


@router.delete("/{template_id}", status_code=204)
async def delete_template(template_id: str, db: DatabaseDep, user: MarketingUser) -> None:
    async with db.transaction() as session:
        await service.delete_template(session, template_id=parse_id(template_id, "template"))


@router.post("/{template_id}/preview")
async def preview_template(
    template_id: str, body: PreviewRequest, db: DatabaseDep, user: CurrentUser
) -> PreviewRead:
    async with db.session() as session:
        rendered = await service.preview(
            session,
            template_id=parse_id(template_id, "template"),
            contact_id=body.contact_id,
            principal=user,
        )
    return PreviewRead(subject=rendered.subject, html=rendered.html, text=rendered.text)
