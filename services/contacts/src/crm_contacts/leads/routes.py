"""HTTP routes of /leads, /lead-rules (admins) and the public web form endpoint."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from crm_contacts.leads import rules, service
from crm_contacts.leads.schemas import (
    FormKey,
    LeadCreate,
    LeadRead,
    LeadRuleCreate,
    LeadRuleRead,
    LeadRuleUpdate,
    LeadUpdate,
    PublicLead,
    Received,
)
from crm_contacts.leads.service import Intake
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser, CurrentUser, Principal, Role, require_roles
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.problems import Forbidden
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/leads", tags=["leads"])
rules_router = APIRouter(prefix="/lead-rules", tags=["leads"])
# Outside /api/v1: the gateway forwards `POST /public/forms/{form_key}` here unauthenticated.
public_router = APIRouter(prefix="/public/forms", tags=["public"])

# Who may post leads: integrations act as an admin's, a head of sales' or a marketer's API
# key (scope `leads:write`, checked by the gateway); sales reps do not route leads.
LEAD_ROLES = (Role.ADMIN, Role.HEAD_OF_SALES, Role.MARKETER)
LeadPoster = Annotated[Principal, Depends(require_roles(*LEAD_ROLES))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=1000)]


def _phone_region(request: Request) -> str:
    region: str = request.app.state.settings.phone_region
    return region


@router.post("", status_code=status.HTTP_201_CREATED, response_model=LeadRead)
async def post_lead(
    data: LeadCreate, principal: LeadPoster, db: DatabaseDep, request: Request
) -> LeadRead:
    """Take in a lead: de-duplicated against the base, owned as `rule_id` says."""
    if principal.scopes is not None and "leads:write" not in principal.scopes:
        raise Forbidden("This API key may not post leads (scope leads:write).")
    intake = Intake(
        data=data,
        source=data.source,
        actor_id=principal.user_id,
        rule_id=str(data.rule_id) if data.rule_id else None,
    )
    return await service.take_in(db, intake, phone_region=_phone_region(request))


@router.get("", response_model=Page[LeadRead])
async def list_leads(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    owner_id: uuid.UUID | None = None,
) -> Page[LeadRead]:
    return await service.list_leads(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        status=status,
        owner_id=str(owner_id) if owner_id else None,
    )


@router.get("/{lead_id}", response_model=LeadRead)
async def get_lead(lead_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep) -> LeadRead:
    return await service.get_lead(db=db, principal=principal, lead_id=str(lead_id))


@router.patch("/{lead_id}", response_model=LeadRead)
async def update_lead(
    lead_id: uuid.UUID, data: LeadUpdate, principal: CurrentUser, db: DatabaseDep
) -> LeadRead:
    """Close a lead (or reopen it)."""
    return await service.update_lead(db=db, principal=principal, lead_id=str(lead_id), data=data)


@public_router.post("/{form_key}", status_code=status.HTTP_202_ACCEPTED, response_model=Received)
async def post_form(
    form_key: FormKey, data: PublicLead, db: DatabaseDep, request: Request
) -> Received:
    """A web form's lead (no login: the gateway checks the honeypot and limits per IP)."""
    intake = Intake(data=data, source="web_form", actor_id=None, form_key=form_key)
    await service.take_in(db, intake, phone_region=_phone_region(request))
    return Received()


@rules_router.post("", status_code=status.HTTP_201_CREATED, response_model=LeadRuleRead)
async def create_rule(
    data: LeadRuleCreate, principal: AdminUser, db: DatabaseDep, response: Response
) -> LeadRuleRead:
    rule = await rules.create_rule(db=db, principal=principal, data=data)
    response.headers["ETag"] = etag(rule.version)
    return rule


@rules_router.get("", response_model=Page[LeadRuleRead])
async def list_rules(
    principal: AdminUser, db: DatabaseDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[LeadRuleRead]:
    return await rules.list_rules(db=db, limit=limit, cursor=cursor)


@rules_router.get("/{rule_id}", response_model=LeadRuleRead)
async def get_rule(rule_id: uuid.UUID, principal: AdminUser, db: DatabaseDep) -> LeadRuleRead:
    return await rules.get_rule(db=db, rule_id=str(rule_id))


@rules_router.patch("/{rule_id}", response_model=LeadRuleRead)
async def update_rule(
    rule_id: uuid.UUID,
    data: LeadRuleUpdate,
    principal: AdminUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> LeadRuleRead:
    rule = await rules.update_rule(
        db=db, principal=principal, rule_id=str(rule_id), data=data, expected_version=if_match
    )
    response.headers["ETag"] = etag(rule.version)
    return rule


@rules_router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: uuid.UUID, principal: AdminUser, db: DatabaseDep) -> Response:
    await rules.delete_rule(db=db, principal=principal, rule_id=str(rule_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
