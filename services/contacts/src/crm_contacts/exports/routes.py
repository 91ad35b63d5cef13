"""HTTP routes of /exports: make a CSV of the visible contacts, read it back, download it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status

from crm_contacts.exports import service
from crm_contacts.exports.schemas import ExportCreate, ExportRead
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser

router = APIRouter(prefix="/exports", tags=["exports"])


def _retention(request: Request) -> timedelta:
    return timedelta(hours=request.app.state.settings.export_retention_hours)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ExportRead)
async def create_export(
    data: ExportCreate,
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
) -> ExportRead:
    """A CSV of the contacts the caller may see with these filters (permission contacts.export)."""
    settings = request.app.state.settings
    export = await service.create_export(
        db=db,
        principal=principal,
        data=data,
        phone_region=settings.phone_region,
        export_roles=settings.export_roles,
        retention=_retention(request),
    )
    response.headers["Location"] = f"{request.url.path}/{export.id}"
    return export


@router.get("/{export_id}", response_model=ExportRead)
async def get_export(
    export_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, request: Request
) -> ExportRead:
    return await service.get_export(
        db=db, principal=principal, export_id=str(export_id), retention=_retention(request)
    )


@router.get("/{export_id}/download", response_class=Response)
async def download_export(
    export_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep, request: Request
) -> Response:
    """The CSV file (UTF-8 with BOM); 410 once it expired."""
    content = await service.download(
        db=db, principal=principal, export_id=str(export_id), retention=_retention(request)
    )
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="contacts-{export_id}.csv"'},
    )
