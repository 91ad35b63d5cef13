"""Public endpoints the gateway forwards to (`/public/o|c|u/...`, public-routes.md).

No login: the signed token is the authority. A bad, tampered or unknown token
is a 404 problem that does not say which.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from crm_campaigns.tracking import service
from crm_campaigns.tracking.links import CLICK, OPEN, UNSUBSCRIBE, Links
from crm_campaigns.tracking.links import Recipient as LinkRecipient
from crm_kernel.app import DatabaseDep
from crm_kernel.problems import NotFound
from crm_kernel.signing import BadToken

router = APIRouter(prefix="/public", tags=["public"])


def _links(request: Request) -> Links:
    links = getattr(request.app.state, "tracking_links", None)
    if links is None:
        links = request.app.state.tracking_links = Links(request.app.state.settings)
    return links


def _read(request: Request, purpose: str, token: str) -> tuple[LinkRecipient, dict[str, object]]:
    try:
        return _links(request).read(purpose, token)
    except BadToken as exc:
        raise NotFound("This link is not valid.") from exc


@router.get("/open/{token}", status_code=204)
async def track_open(token: str, request: Request, db: DatabaseDep) -> Response:
    who, _ = _read(request, OPEN, token)
    async with db.transaction() as session:
        await service.record_open(session, who)
    return Response(status_code=204)


@router.get("/click/{token}")
async def track_click(token: str, request: Request, db: DatabaseDep) -> dict[str, str]:
    who, data = _read(request, CLICK, token)
    url = data.get("u")
    if not isinstance(url, str):
        raise NotFound("This link is not valid.")
    async with db.transaction() as session:
        await service.record_click(session, who, url)
    return {"url": url}


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(token: str, request: Request, db: DatabaseDep) -> dict[str, object]:
    """What the confirmation page shows; changes nothing (a mail scanner may follow GETs)."""
    who, _ = _read(request, UNSUBSCRIBE, token)
    async with db.session() as session:
        view = await service.unsubscribe_view(session, who)
    return {"channel": view.channel, "address": view.address, "unsubscribed": view.unsubscribed}


@router.post("/unsubscribe/{token}")
async def unsubscribe(token: str, request: Request, db: DatabaseDep) -> dict[str, bool]:
    """RFC 8058 one-click (or the page's form): idempotent."""
    who, _ = _read(request, UNSUBSCRIBE, token)
    async with db.transaction() as session:
        await service.unsubscribe(session, who)
    return {"unsubscribed": True}
