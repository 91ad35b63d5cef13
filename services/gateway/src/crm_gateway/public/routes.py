"""The /public routes: open pixel, click, unsubscribe, event registration, order status,
web lead forms and provider callbacks, each forwarded to the owning service's /public endpoint.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from crm_gateway.public import pages
from crm_gateway.public.texts import language
from crm_gateway.public.upstream import Answer, call, segment
from crm_gateway.state import GatewayDep
from crm_kernel.problems import BadGateway, problem

router = APIRouter(prefix="/public", include_in_schema=False)

# 1x1 transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# The open is recorded on the way; the mail client must not wait long for its image.
PIXEL_TIMEOUT = 2.0
FORM_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "message",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
HONEYPOT = "website"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def safe_redirect(url: Any) -> str | None:
    """`url` if it is an absolute http(s) URL with a host, else None (no `//evil`, `javascript:`)."""
    if not isinstance(url, str) or len(url) > 4096:
        return None
    if any(ch in url for ch in "\\\r\n\t ") or any(ord(ch) < 32 for ch in url):
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _page_for(request: Request, answer: Answer) -> HTMLResponse | None:
    """The page for an answer that is not a success: invalid link or unavailable."""
    if answer.status is None or answer.status >= 500:
        return pages.unavailable(request)
    if answer.status >= 400 or answer.json() is None:
        return pages.invalid_link(request)
    return None


@router.get("/o/{token}")
async def open_pixel(token: str, request: Request, gateway: GatewayDep) -> Response:
    """Records an open; always the image, whatever the token (nothing to learn from it)."""
    await call(
        gateway,
        request,
        "campaigns",
        "GET",
        f"/public/open/{segment(token)}",
        timeout=PIXEL_TIMEOUT,
    )
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/c/{token}")
async def click(token: str, request: Request, gateway: GatewayDep) -> Response:
    """Records a click and redirects to the signed target, only if it is an absolute http(s) URL."""
    answer = await call(gateway, request, "campaigns", "GET", f"/public/click/{segment(token)}")
    page = _page_for(request, answer)
    if page is not None:
        return page
    target = safe_redirect((answer.json() or {}).get("url"))
    if target is None or answer.status != 200:
        return pages.invalid_link(request)
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


def _action(request: Request) -> str:
    """The form's target: this very path (relative, so it stays on our host), language kept."""
    return f"{request.url.path}?lang={language(request)}"


@router.get("/u/{token}")
async def unsubscribe_page(token: str, request: Request, gateway: GatewayDep) -> HTMLResponse:
    """Shows whom the link unsubscribes, with a button; changes nothing."""
    answer = await call(
        gateway, request, "campaigns", "GET", f"/public/unsubscribe/{segment(token)}"
    )
    return _page_for(request, answer) or pages.render(
        request,
        "unsubscribe.html",
        title=pages.text(request, "unsubscribe_title"),
        info=answer.json(),
        action=_action(request),
    )


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request, gateway: GatewayDep) -> HTMLResponse:
    """RFC 8058 one-click (`List-Unsubscribe=One-Click`) or the page's button; idempotent."""
    answer = await call(
        gateway,
        request,
        "campaigns",
        "POST",
        f"/public/unsubscribe/{segment(token)}",
        body=await request.body(),
        content_type=request.headers.get("content-type"),
    )
    return _page_for(request, answer) or pages.message(
        request, "unsubscribed_title", "unsubscribed_body", status=200
    )


@router.get("/e/{token}")
async def event_page(token: str, request: Request, gateway: GatewayDep) -> HTMLResponse:
    """A marketing event invitation: when, where, seats left, and a register button."""
    answer = await call(gateway, request, "campaigns", "GET", f"/public/events/{segment(token)}")
    info = answer.json() or {}
    return _page_for(request, answer) or pages.render(
        request, "event.html", title=str(info.get("name", "")), info=info, action=_action(request)
    )


@router.post("/e/{token}")
async def register(token: str, request: Request, gateway: GatewayDep) -> HTMLResponse:
    """Registers for the event; a full event is a 409 page."""
    answer = await call(
        gateway, request, "campaigns", "POST", f"/public/events/{segment(token)}/register"
    )
    if answer.status == 409:
        return pages.message(request, "event_full_title", "event_full_body", status=409)
    return _page_for(request, answer) or pages.message(
        request, "event_registered_title", "event_registered_body", status=200
    )


@router.get("/orders/{token}")
async def order_status(token: str, request: Request, gateway: GatewayDep) -> HTMLResponse:
    """A client's order: status, total and history."""
    answer = await call(gateway, request, "deals", "GET", f"/public/orders/{segment(token)}")
    info = answer.json() or {}
    page = _page_for(request, answer)
    if page is not None:
        return page
    title = pages.text(request, "order_title").format(number=info.get("number", ""))
    return pages.render(request, "order.html", title=title, info=info)


async def _form_fields(request: Request, is_form: bool) -> dict[str, Any] | None:
    """The submitted fields (None: a JSON body that is not an object)."""
    if is_form:
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _errors(answer: Answer) -> list[str]:
    problem_body = answer.json() or {}
    errors = problem_body.get("errors") or []
    found = [f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)] or [
        str(problem_body.get("detail", ""))
    ]
    return [error for error in found if error]


@router.post("/forms/{form_key}")
async def web_form(form_key: str, request: Request, gateway: GatewayDep) -> Response:
    """A web lead form: JSON for API callers, an HTML page for a browser's form post.

    A filled honeypot field (`website`, hidden from people) marks a bot: it
    gets the success answer, and nothing is passed on.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_form = content_type in FORM_TYPES
    fields = await _form_fields(request, is_form)
    if fields is None:
        return problem(
            422,
            "Unprocessable",
            "The body must be a JSON object or a form.",
            errors=[{"field": "body", "location": "body", "message": "not a JSON object"}],
        )
    if str(fields.get(HONEYPOT) or "").strip():
        if is_form:
            return pages.message(request, "form_thanks_title", "form_thanks_body", status=200)
        return JSONResponse({"received": True}, status_code=200)
    lead = {name: fields[name] for name in FORM_FIELDS if fields.get(name) not in (None, "")}
    answer = await call(
        gateway,
        request,
        "contacts",
        "POST",
        f"/public/forms/{segment(form_key)}",
        body=orjson.dumps(lead),
        content_type="application/json",
    )
    if answer.status is None or answer.status >= 500:
        if is_form:
            return pages.unavailable(request)
        raise BadGateway("The form could not be handed on; try again later.")
    if not is_form:
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
    if answer.status == 404:
        return pages.message(request, "form_not_found_title", "form_not_found_body", status=404)
    if answer.status >= 400:
        return pages.message(
            request, "form_invalid_title", None, status=answer.status, errors=_errors(answer)
        )
    return pages.message(request, "form_thanks_title", "form_thanks_body", status=200)


async def _callback(request: Request, gateway: GatewayDep, path: str) -> Response:
    """A provider's callback passed on raw; the service verifies it and its answer goes back."""
    answer = await call(
        gateway,
        request,
        "notifications",
        "POST",
        path,
        body=await request.body(),
        content_type=request.headers.get("content-type"),
    )
    if answer.status is None:
        raise BadGateway("The notifications service is unavailable.")
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


@router.post("/callbacks/sms/{provider}/{secret}")
async def sms_callback(
    provider: str, secret: str, request: Request, gateway: GatewayDep
) -> Response:
    """SMS delivery status from a provider (secret path and/or its signature)."""
    path = f"/public/callbacks/sms/{segment(provider)}/{segment(secret)}"
    return await _callback(request, gateway, path)


@router.post("/callbacks/email/{secret}")
async def email_callback(secret: str, request: Request, gateway: GatewayDep) -> Response:
    """Delivery status notifications and bounces."""
    return await _callback(request, gateway, f"/public/callbacks/email/{segment(secret)}")
