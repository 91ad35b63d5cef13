"""HTTP routes of /imports: a CSV as multipart `file` or as the raw body; options in the query."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from crm_contacts.imports import csvfile, service, worker
from crm_contacts.imports.importer import POLICIES
from crm_contacts.imports.schemas import DryRunReport, ImportRead
from crm_kernel.app import DatabaseDep
from crm_kernel.auth import CurrentUser
from crm_kernel.problems import DomainError, Unprocessable

router = APIRouter(prefix="/imports", tags=["imports"])

# Larger files are refused before reading further (413).
MAX_BYTES = 50 * 1024 * 1024
Policy = Annotated[str, Query(pattern="^(" + "|".join(POLICIES) + ")$")]


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


def _mapping(raw: str | None) -> dict[str, str] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value: Any = json.loads(raw)
    except ValueError as exc:
        raise _bad_mapping("not JSON") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str | None) for k, v in value.items()
    ):
        raise _bad_mapping('an object of "CSV column": "field" pairs is required')
    return {k: v or "" for k, v in value.items()}


def _bad_mapping(message: str) -> Unprocessable:
    return Unprocessable(
        f"The column mapping is not valid: {message}",
        errors=[{"field": "mapping", "location": "query", "message": message}],
    )


async def _upload(request: Request) -> tuple[bytes, str | None]:
    """The file's bytes, and a mapping sent as a form field with it."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_BYTES + 64 * 1024:
        raise PayloadTooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Unprocessable(
                'Send the CSV as the multipart field "file".',
                errors=[{"field": "file", "location": "body", "message": "missing"}],
            )
        raw = await upload.read(MAX_BYTES + 1)
        mapping = form.get("mapping")
        return raw, mapping if isinstance(mapping, str) else None
    raw = await request.body()
    return raw, None


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportRead,
    responses={200: {"model": DryRunReport, "description": "the dry run's report"}},
)
async def start_import(
    principal: CurrentUser,
    db: DatabaseDep,
    request: Request,
    response: Response,
    dry_run: bool = False,
    duplicate_policy: Policy = "skip",
    mapping: Annotated[str | None, Query(max_length=10_000)] = None,
) -> Any:
    """Import contacts from a CSV; `dry_run=true` reports each bad row and writes nothing."""
    raw, form_mapping = await _upload(request)
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    file = csvfile.read(raw)
    columns = _mapping(mapping if mapping is not None else form_mapping)
    if dry_run:
        report = await service.dry_run(
            db=db,
            principal=principal,
            file=file,
            mapping=columns,
            policy=duplicate_policy,
            phone_region=request.app.state.settings.phone_region,
        )
        return JSONResponse(report.model_dump(mode="json"), status_code=status.HTTP_200_OK)
    job = await service.queue(
        db=db, principal=principal, file=file, mapping=columns, policy=duplicate_policy
    )
    worker.job_queued(db)
    response.headers["Location"] = f"{request.url.path}/{job.id}"
    return job


@router.get("/{import_id}", response_model=ImportRead)
async def get_import(import_id: uuid.UUID, principal: CurrentUser, db: DatabaseDep) -> ImportRead:
    """Progress: `processed` of `total`, counts, and the bad rows so far."""
    return await service.get_job(db=db, principal=principal, job_id=str(import_id))
