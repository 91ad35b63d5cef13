"""Contacts as CSV cells, safe to open in a spreadsheet.

A cell starting with = + - @ (or tab, CR) would be run as a formula by Excel
and LibreOffice (CSV injection); such cells get a leading `'`, which the
spreadsheet shows as text and never evaluates.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from crm_contacts.contacts.schemas import ContactRead

COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_id",
    "position",
    "owner_id",
    "tags",
    "lifecycle_stage",
    "consent_email",
    "consent_sms",
    "custom",
    "created_at",
    "updated_at",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return f"'{cell}" if cell.startswith(_FORMULA_STARTS) else cell


def _cells(contact: ContactRead) -> list[str]:
    values = {
        **contact.model_dump(mode="json"),
        "tags": ";".join(contact.tags),
        "consent_email": str(contact.consent.email).lower(),
        "consent_sms": str(contact.consent.sms).lower(),
        "custom": json.dumps(contact.custom, ensure_ascii=False) if contact.custom else "",
    }
    return [neutralise("" if values[c] is None else str(values[c])) for c in COLUMNS]


def render(contacts: Iterable[ContactRead]) -> tuple[bytes, int]:
    """UTF-8 with a BOM (so Excel reads Cyrillic right) and the number of data rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    rows = 0
    for contact in contacts:
        writer.writerow(_cells(contact))
        rows += 1
    return out.getvalue().encode("utf-8-sig"), rows


def without_row(content: bytes, contact_id: str) -> tuple[bytes, int]:
    """The CSV without the row(s) of one contact (first cell its id) and how many went.

    Parsed as CSV, not split by lines, since a quoted cell may hold a line break;
    the same writer writes it back, so every other row stays byte for byte.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    removed = 0
    for row in csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")):
        if row and row[0] == contact_id:
            removed += 1
        else:
            writer.writerow(row)
    return out.getvalue().encode("utf-8-sig"), removed
