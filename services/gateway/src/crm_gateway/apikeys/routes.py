"""API key endpoints (admin only): create (the key shown once), list, read, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from crm_gateway.apikeys import service
from crm_gateway.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from crm_gateway.state import GatewayDep
from crm_kernel.app import API_PREFIX, DatabaseDep
from crm_kernel.auth import AdminUser
from crm_kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(
    data: ApiKeyCreate, admin: AdminUser, db: DatabaseDep, response: Response
) -> ApiKeyCreated:
    """Create a key acting as a user within the given scopes; the answer holds the key, once."""
    record, key = await service.create_key(db, data=data, actor=admin.user_id)
    response.headers["Location"] = f"{API_PREFIX}/api-keys/{record.id}"
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated.model_validate(
        {**ApiKeyRead.model_validate(record).model_dump(), "key": key}
    )


@router.get("")
async def list_keys(
    _admin: AdminUser,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
    user_id: str | None = None,
    revoked: bool | None = None,
) -> Page[ApiKeyRead]:
    """Keys, newest first (never the keys themselves); filter by acting user or revocation."""
    records, next_cursor = await service.list_keys(
        db, limit=limit, cursor=cursor, user_id=user_id, revoked=revoked
    )
    return Page(items=[ApiKeyRead.model_validate(r) for r in records], next_cursor=next_cursor)


@router.get("/{key_id}")
async def get_key(key_id: str, _admin: AdminUser, db: DatabaseDep) -> ApiKeyRead:
    """One key, with when it was last used."""
    return ApiKeyRead.model_validate(await service.get_key(db, key_id=key_id))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: str, _admin: AdminUser, db: DatabaseDep, gateway: GatewayDep) -> None:
    """Revoke a key: refused at once by this replica, within seconds by the others."""
    await service.revoke_key(db, key_id=key_id)
    gateway.api_keys.forget(key_id)
