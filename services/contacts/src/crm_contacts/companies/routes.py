"""HTTP routes of /companies: parse, authorise, call the service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from crm_contacts.companies import service
from crm_contacts.companies.schemas import CompanyCreate, CompanyRead, CompanyUpdate, Domain
from crm_contacts.contacts.schemas import Reassign
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from crm_kernel.versioning import IfMatch, etag

router = APIRouter(prefix="/companies", tags=["companies"])


def _phone_region(request: Request) -> str:
    region: str = request.app.state.settings.phone_region
    return region


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CompanyRead)
async def create_company(
    data: CompanyCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> CompanyRead:
    """Add a company, owned by the caller unless they may assign someone else."""
    company = await service.create_company(
        db=db, principal=principal, data=data, phone_region=_phone_region(request)
    )
    response.headers["Location"] = f"{request.url.path}/{company.id}"
    response.headers["ETag"] = etag(company.version)
    return company


@router.get("/{company_id}", response_model=CompanyRead)
async def get_company(
    company_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, response: Response
) -> CompanyRead:
    """One company; the ETag is its version."""
    company = await service.get_company(db=db, principal=principal, company_id=str(company_id))
    response.headers["ETag"] = etag(company.version)
    return company


@router.get("", response_model=Page[CompanyRead])
async def list_companies(
    principal: CurrentUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[str | None, Query(max_length=200, description="e.g. name,-created_at")] = None,
    owner_id: uuid.UUID | None = None,
    domain: Annotated[Domain | None, Query()] = None,
    trash: Annotated[
        bool, Query(description="List the trash instead (admins, heads of sales).")
    ] = False,
    q: Annotated[str | None, Query(max_length=200, description="Search name and domain.")] = None,
) -> Page[CompanyRead]:
    """The companies the caller may see, a page at a time."""
    return await service.list_companies(
        db=db,
        principal=principal,
        limit=limit,
        cursor=cursor,
        sort=sort,
        owner_id=str(owner_id) if owner_id else None,
        domain=domain,
        trash=trash,
        q=q,
    )


@router.patch("/{company_id}", response_model=CompanyRead)
async def update_company(
    company_id: uuid.UUID,
    data: CompanyUpdate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
    if_match: IfMatch,
) -> CompanyRead:
    """Change fields (`null` clears one); 412 if If-Match or `version` is stale."""
    company = await service.update_company(
        db=db,
        principal=principal,
        company_id=str(company_id),
        data=data,
        expected_version=if_match,
        phone_region=_phone_region(request),
    )
    response.headers["ETag"] = etag(company.version)
    return company


@router.delete("/{company_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_company(
    company_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, if_match: IfMatch
) -> Response:
    """Move a company to the trash (soft; restorable)."""
    await service.delete_company(
        db=db, principal=principal, company_id=str(company_id), expected_version=if_match
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{company_id}/restore", response_model=CompanyRead)
async def restore_company(
    company_id: uuid.UUID,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> CompanyRead:
    """Bring a company back from the trash (admins, heads of sales)."""
    company = await service.restore_company(
        db=db, principal=principal, company_id=str(company_id), expected_version=if_match
    )
    response.headers["ETag"] = etag(company.version)
    return company


@router.post("/{company_id}/reassign", response_model=CompanyRead)
async def reassign_company(
    company_id: uuid.UUID,
    data: Reassign,
    principal: CurrentUser,
    db: DatabaseDep,
    response: Response,
    if_match: IfMatch,
) -> CompanyRead:
    """Give a company a new owner (admins; heads of sales within their teams)."""
    company = await service.reassign_company(
        db=db,
        principal=principal,
        company_id=str(company_id),
        owner_id=str(data.owner_id),
        expected_version=if_match,
    )
    response.headers["ETag"] = etag(company.version)
    return company
