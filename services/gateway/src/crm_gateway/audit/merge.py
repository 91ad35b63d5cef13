"""Merging audit sources newest first, with one cursor holding each source's position."""

from __future__ import annotations

import asyncio
import base64
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from crm_gateway.audit.schemas import AuditEntry, AuditPage
from crm_gateway.audit.sources import AuditFilter, AuditSource, Unavailable
from crm_kernel.problems import BadRequest

# A position in a source: the cursor of a page and an index in it; None: the source is done.
Position = tuple[str | None, int] | None
START: Position = (None, 0)
# Pages read from one source per request at most (a service that ignores a filter is
# skipped through by the gateway, but not without end).
MAX_PAGES = 5


@dataclass
class Scan:
    """What one source offers for this page: entries each with the position after it."""

    found: list[tuple[AuditEntry, Position]]
    resume: Position  # where the scan stopped: after the last entry found, or further


async def _scan(source: AuditSource, start: Position, where: AuditFilter, want: int) -> Scan:
    found: list[tuple[AuditEntry, Position]] = []
    if start is None:
        return Scan(found, None)
    cursor, index = start
    for _ in range(MAX_PAGES):
        items, next_cursor = await source.page(cursor, where)
        for i in range(index, len(items)):
            entry = items[i]
            after: Position = (cursor, i + 1) if i + 1 < len(items) else _next(next_cursor)
            if where.since is not None and entry.at < where.since:
                return Scan(found, None)  # newest first: nothing further is in the window
            if where.admits(entry):
                found.append((entry, after))
                if len(found) == want:
                    return Scan(found, after)
        if next_cursor is None:
            return Scan(found, None)
        cursor, index = next_cursor, 0
    return Scan(found, (cursor, index))


def _next(cursor: str | None) -> Position:
    return (cursor, 0) if cursor is not None else None


def encode_cursor(positions: dict[str, Position]) -> str | None:
    if all(position is None for position in positions.values()):
        return None
    return base64.urlsafe_b64encode(orjson.dumps(positions)).decode().rstrip("=")


def decode_cursor(cursor: str | None, names: Sequence[str]) -> dict[str, Position]:
    if cursor is None:
        return dict.fromkeys(names, START)
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        positions: dict[str, Position] = {}
        for name in names:
            value = raw.get(name)
            if value is None:
                positions[name] = None
            else:
                page, index = value
                if not (page is None or isinstance(page, str)) or not isinstance(index, int):
                    raise ValueError
                positions[name] = (page, index)
        return positions
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadRequest(
            "The cursor is not valid.",
            errors=[{"field": "cursor", "location": "query", "message": "not a cursor"}],
        ) from exc


def _key(entry: AuditEntry) -> tuple[float, str, str]:
    return (entry.at.timestamp(), entry.service, entry.id)


async def merged_page(
    sources: Sequence[AuditSource], *, where: AuditFilter, limit: int, cursor: str | None
) -> AuditPage:
    """The newest `limit` entries of all sources after the cursor's positions.

    Each source offers up to `limit` entries (all of them could be the newest);
    a source that fails is named in `unavailable` and left out of the rest of
    this listing (its position is dropped from the next cursor).
    """
    names = [f"{s.name}:{i}" for i, s in enumerate(sources)]
    positions = decode_cursor(cursor, names)
    results = await asyncio.gather(
        *(_scan(s, positions[n], where, limit) for s, n in zip(sources, names, strict=True)),
        return_exceptions=True,
    )
    unavailable: dict[str, str] = {}
    offered: list[list[tuple[AuditEntry, str, Position]]] = []
    scans: dict[str, Scan] = {}
    for source, name, result in zip(sources, names, results, strict=True):
        if isinstance(result, Unavailable):
            unavailable[source.name] = str(result)
            positions[name] = None
        elif isinstance(result, BaseException):
            raise result
        else:
            scans[name] = result
            offered.append([(entry, name, after) for entry, after in result.found])
    # A merge never reorders one source's entries, so what is taken of each is a prefix.
    taken = list(
        itertools.islice(heapq.merge(*offered, key=lambda item: _key(item[0]), reverse=True), limit)
    )
    for name, scan in scans.items():
        mine = [after for _, owner, after in taken if owner == name]
        if len(mine) == len(scan.found):
            positions[name] = scan.resume
        elif mine:
            positions[name] = mine[-1]
    return AuditPage(
        items=[entry for entry, _, _ in taken],
        next_cursor=encode_cursor(positions),
        unavailable=unavailable,
    )
