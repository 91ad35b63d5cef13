"""Rendering the public HTML pages (Jinja2, autoescaped) in the request's language."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from crm_gateway.public.texts import TEXTS, language

_env = Environment(
    loader=PackageLoader("crm_gateway.public", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# The pages load nothing and run nothing: inline styles, and forms posting back here.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _when(value: Any) -> str:
    """An ISO time as `2026-11-29 20:15 UTC` (the pages do not know the reader's zone)."""
    text = str(value or "")
    if len(text) >= 16 and text[10] == "T":
        return f"{text[:10]} {text[11:16]} UTC"
    return text


def text(request: Request, key: str) -> str:
    """One of the pages' texts in the request's language."""
    return TEXTS[language(request)][key]


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """The page in the request's language (`t` holds its texts)."""
    lang = language(request)
    t = TEXTS[lang]
    html = _env.get_template(template).render(
        lang=lang,
        t=t,
        when=_when,
        status_name=lambda status: t.get(f"status_{status}", status),
        **{"title": "", **context},
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={"Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP},
    )


def message(
    request: Request, title_key: str, body_key: str | None, *, status: int, **context: Any
) -> HTMLResponse:
    """A page of a title and a sentence, both named by their keys in the texts."""
    body = text(request, body_key) if body_key else ""
    return render(
        request, "message.html", status=status, title=text(request, title_key), body=body, **context
    )


def invalid_link(request: Request) -> HTMLResponse:
    """The one answer for a bad, expired or tampered link: never says which."""
    return message(request, "invalid_title", "invalid_body", status=404)


def unavailable(request: Request) -> HTMLResponse:
    return message(request, "unavailable_title", "unavailable_body", status=503)
