"""RFC 9457 problem responses for domain errors, validation errors and the unexpected."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from crm_kernel.request_id import current_request_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A failure the caller can understand; the kernel's handler turns it into problem JSON."""

    status: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = list(errors or [])
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(DomainError):
    pass


class Unauthorized(DomainError):
    status, title, slug = 401, "Not authenticated", "unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any):
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(DomainError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(DomainError):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(DomainError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(DomainError):
    status, title, slug = 412, "Precondition failed", "stale-version"


class Unprocessable(DomainError):
    status, title, slug = 422, "Invalid input", "validation"


class TooManyRequests(DomainError):
    status, title, slug = 429, "Too many requests", "rate-limited"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any):
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Retry-After"] = str(max(1, int(retry_after)))
        super().__init__(detail, headers=headers, **kwargs)


class BadGateway(DomainError):
    status, title, slug = 502, "Bad gateway", "upstream-unavailable"


class GatewayTimeout(DomainError):
    status, title, slug = 504, "Gateway timeout", "upstream-timeout"


class ServiceUnavailable(DomainError):
    status, title, slug = 503, "Service unavailable", "unavailable"


_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    429: "rate-limited",
}


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    slug: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; `errors` lists the fields at fault."""
    body: dict[str, Any] = {
        "type": f"/problems/{slug or _STATUS_SLUGS.get(status, 'error')}",
        "title": title,
        "status": status,
        "detail": detail or title,
        **extra,
    }
    if errors:
        body["errors"] = list(errors)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def validation_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors as `{field, location, message, type}`, field a dotted path."""
    errors = []
    for error in raw:
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else ""
        field = ".".join(loc[1:] if location else loc) or location or "body"
        if error.get("type") == "json_invalid":
            field = "body"  # the loc holds the byte offset of the syntax error
        errors.append(
            {
                "field": field,
                "location": location or "body",
                "message": error.get("msg", "invalid"),
                "type": error.get("type", "value_error"),
            }
        )
    return errors


# SQLSTATEs of text the database cannot store: character_not_in_repertoire
# (a NUL in text) and untranslatable_character (a \u0000 escape in JSON).
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to problem JSON (never an HTML or bare 500)."""

    @app.exception_handler(DomainError)
    async def on_domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            slug=exc.slug,
            errors=exc.errors,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem(exc.status_code, title, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "The server failed; the error is logged.")

    @app.exception_handler(DBAPIError)
    async def on_database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # PostgreSQL refuses NUL (U+0000) in text and JSON; SQLite takes it. Either way
        # it is what a user typed, not a server fault, and the transaction rolled back.
        if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT:
            return problem(422, "Invalid input", "Text must not contain NUL (\\u0000) characters.")
        return await on_unexpected(request, exc)
