"""Versions as ETags and If-Match preconditions, shared by users and teams."""

from __future__ import annotations

from crm_kernel.problems import BadRequest, PreconditionFailed


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> int | None:
    """The version an `If-Match` header expects (None: no precondition or `*`).

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


def check_version(current: int, *expected: int | None) -> None:
    """412 when the caller's version (If-Match or body) is not the stored one."""
    for version in expected:
        if version is not None and version != current:
            raise PreconditionFailed(
                f"The record changed since version {version}; it is now at version {current}.",
                current_version=current,
            )
