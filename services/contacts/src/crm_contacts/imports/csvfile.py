"""Reading an uploaded CSV: encoding (UTF-8 or cp1251), delimiter (`,` or `;`), header and rows.

Anything that makes the whole file unreadable is a 422 problem before any job
exists; a row that is merely wrong is reported per row by the importer.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from crm_kernel.problems import Unprocessable

MAX_COLUMNS = 100
# A record and the file line it ends on (what a spreadsheet or editor shows the user).
# Tuples of strings: the garbage collector stops tracking them, so a job's 100,000
# rows are not walked again by every full collection while it runs.
Row = tuple[int, tuple[str, ...]]


@dataclass(frozen=True)
class CsvFile:
    text: str
    encoding: str
    delimiter: str
    header: list[str]
    rows: list[Row]


def _bad_file(message: str) -> Unprocessable:
    return Unprocessable(
        f"The file cannot be imported: {message}",
        errors=[{"field": "file", "location": "body", "message": message}],
    )


def decode(raw: bytes) -> tuple[str, str]:
    """The text and its encoding: UTF-8 (with or without BOM) if it is valid, else cp1251."""
    if b"\x00" in raw:
        raise _bad_file("it is not a text file")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1251"), "cp1251"
    except UnicodeDecodeError as exc:
        raise _bad_file("the text is neither UTF-8 nor cp1251") from exc


def sniff_delimiter(first_line: str) -> str:
    """`;` (Excel in Russian locales) or `,`, whichever splits the header more (outside quotes)."""
    outside = "".join(part for i, part in enumerate(first_line.split('"')) if i % 2 == 0)
    return ";" if outside.count(";") > outside.count(",") else ","


def rows_of(text: str, delimiter: str) -> list[Row]:
    """Every non-blank record of the text with its line; 422 naming the line of a malformed one."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        return [
            (reader.line_num, tuple(row)) for row in reader if any(cell.strip() for cell in row)
        ]
    except csv.Error as exc:
        raise _bad_file(f"malformed CSV at line {reader.line_num}: {exc}") from exc


def read(raw: bytes) -> CsvFile:
    """Decode, sniff and split a file; 422 for an empty, binary or malformed one."""
    text, encoding = decode(raw)
    if not text.strip():
        raise _bad_file("it is empty")
    delimiter = sniff_delimiter(text.lstrip().split("\n", 1)[0])
    records = rows_of(text, delimiter)
    header = [cell.strip() for cell in records[0][1]]
    if len(header) > MAX_COLUMNS:
        raise _bad_file(f"more than {MAX_COLUMNS} columns")
    if len(set(header)) != len(header) or not all(header):
        raise _bad_file("the header row needs a distinct, non-empty name for every column")
    return CsvFile(text, encoding, delimiter, header, records[1:])


def split(text: str, delimiter: str) -> tuple[list[str], list[Row]]:
    """Header and rows of a text already checked by `read` (the worker's view of a job)."""
    records = rows_of(text, delimiter)
    return [cell.strip() for cell in records[0][1]], records[1:]
