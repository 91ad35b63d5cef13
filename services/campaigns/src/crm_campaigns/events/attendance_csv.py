"""Attendance imported from a CSV (e.g. the registration desk's export): by contact id or e-mail."""

from __future__ import annotations

import csv
import io
import uuid

from crm_campaigns.events import service
from crm_campaigns.events.schemas import AttendanceImportResult, ImportRowError
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.problems import Unprocessable

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
ID_COLUMNS = ("contact_id", "id")
EMAIL_COLUMNS = ("email", "e-mail", "e_mail")


def _problem(message: str) -> Unprocessable:
    return Unprocessable(
        message, errors=[{"field": "file", "location": "body", "message": message}]
    )


def _rows(raw: bytes) -> tuple[list[str], list[list[str]]]:
    """The header (lower-cased) and the rows of a UTF-8 CSV separated by `,`, `;` or tabs."""
    if len(raw) > MAX_BYTES:
        raise _problem(f"at most {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _problem("the file must be UTF-8 text") from exc
    if "\x00" in text:
        raise _problem("the file must be text (it holds NUL characters)")
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise _problem(f"not a readable CSV: {exc}") from exc
    if not rows:
        raise _problem("the file is empty")
    if len(rows) > MAX_ROWS + 1:
        raise _problem(f"at most {MAX_ROWS} rows")
    return [h.strip().lower() for h in rows[0]], rows[1:]


async def import_attendees(
    *, db: Database, principal: Principal, event_id: str, raw: bytes
) -> AttendanceImportResult:
    """Mark every recognised row's contact as attended; list the rows not recognised."""
    header, rows = _rows(raw)
    id_col = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    email_col = next((header.index(c) for c in EMAIL_COLUMNS if c in header), None)
    if id_col is None and email_col is None:
        raise _problem("a `contact_id` or an `email` column is required")
    errors: list[ImportRowError] = []
    ids_by_row: dict[int, str] = {}
    emails_by_row: dict[int, str] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cell_id = row[id_col].strip() if id_col is not None and id_col < len(row) else ""
        cell_email = (
            row[email_col].strip() if email_col is not None and email_col < len(row) else ""
        )
        if cell_id:
            try:
                ids_by_row[number] = str(uuid.UUID(cell_id))
            except ValueError:
                errors.append(ImportRowError(row=number, message="contact_id is not a UUID"))
        elif cell_email:
            emails_by_row[number] = cell_email.casefold()
        else:
            errors.append(ImportRowError(row=number, message="no contact_id or email"))
    visible = await service.visible_contacts(db, principal, ids_by_row.values())
    by_email = await service.contacts_by_email(db, principal, emails_by_row.values())
    attendees: list[str] = []
    for number, contact_id in ids_by_row.items():
        if contact_id in visible:
            attendees.append(contact_id)
        else:
            errors.append(ImportRowError(row=number, message="no such contact"))
    for number, email in emails_by_row.items():
        matches = by_email.get(email, [])
        if len(matches) == 1:
            attendees.append(matches[0])
        else:
            message = "no contact with this e-mail" if not matches else "several contacts have it"
            errors.append(ImportRowError(row=number, message=message))
    unique = list(dict.fromkeys(attendees))
    if unique:
        await service.record_attendees(
            db=db, principal=principal, event_id=event_id, contact_ids=unique
        )
    else:
        await service.get_event(db=db, event_id=event_id)  # 404 for an unknown event
    errors.sort(key=lambda e: e.row)
    return AttendanceImportResult(attended=len(unique), errors=errors)
