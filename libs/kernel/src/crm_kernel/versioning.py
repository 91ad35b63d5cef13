"""Optimistic concurrency over HTTP: versions as ETags, `If-Match` preconditions, 412 when stale."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from crm_kernel.problems import BadRequest, PreconditionFailed


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> int | None:
    """The version an `If-Match` header expects (None: no precondition, or `*`).

    Accepts `3`, `"3"` and `W/"3"`, since clients echo our ETag either way.
    """
    if header is None or header.strip() in ("", "*"):
        return None
    value = header.strip().removeprefix("W/").strip('"')
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(
            "If-Match must be a version as given in the ETag header.",
            errors=[{"field": "If-Match", "location": "header", "message": "not a version"}],
        ) from exc


def _if_match(if_match: Annotated[str | None, Header()] = None) -> int | None:
    return parse_if_match(if_match)


# The version the caller read, from If-Match; None when the header is absent.
IfMatch = Annotated[int | None, Depends(_if_match)]


def check_version(current: int, *expected: int | None) -> None:
    """412 when a version the caller sent (If-Match or body) is not the stored one."""
    for version in expected:
        if version is not None and version != current:
            raise PreconditionFailed(
                f"The record changed since version {version}; it is now at version {current}.",
                current_version=current,
            )
