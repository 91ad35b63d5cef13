"""What every report route shares: period checks and the CSV answer (`?format=csv`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from fastapi import Response

from crm_kernel.problems import BadRequest

# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


def require_zone(**bounds: datetime | None) -> None:
    """400 naming the bound that has no time zone (a period is compared with UTC times)."""
    for name, value in bounds.items():
        if value is not None and value.tzinfo is None:
            field = name.rstrip("_")
            raise BadRequest(
                f"`{field}` needs a time zone (e.g. 2026-01-01T00:00:00Z).",
                errors=[{"field": field, "location": "query", "message": "time zone required"}],
            )


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Text that would start a formula is quoted so a spreadsheet shows it, not runs it.
    return "'" + text if text.startswith(_FORMULA_START) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_response(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], filename: str
) -> Response:
    """Rows as a UTF-8 CSV download (with a BOM, so spreadsheets read Cyrillic right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return Response(
        ("\ufeff" + buffer.getvalue()).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
