"""HTTP routes of /notification-preferences/{contact_id} (admins, e.g. on a client's request)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from crm_kernel.app import DatabaseDep
from crm_kernel.auth import AdminUser
from crm_notifications.preferences import service
from crm_notifications.preferences.schemas import PreferenceRead, PreferenceWrite

router = APIRouter(prefix="/notification-preferences", tags=["notification preferences"])


@router.get("/{contact_id}", response_model=PreferenceRead)
async def get_preferences(contact_id: uuid.UUID, _: AdminUser, db: DatabaseDep) -> PreferenceRead:
    return await service.get_preferences(db=db, contact_id=str(contact_id))


@router.put("/{contact_id}", response_model=PreferenceRead)
async def put_preferences(
    contact_id: uuid.UUID, data: PreferenceWrite, _: AdminUser, db: DatabaseDep
) -> PreferenceRead:
    return await service.put_preferences(db=db, contact_id=str(contact_id), data=data)
