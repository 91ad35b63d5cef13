"""SMS segmentation: GSM-7 (160 / 153 per part) or UCS-2 (70 / 67), split as phones do."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

# GSM 03.38 default alphabet, and the extension table (each costs an escape + the character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Segmentation:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)


def _parts(costs: list[int], single: int, per_part: int) -> int:
    """Messages needed when no character (escape pair, surrogate pair) may straddle two parts."""
    total = sum(costs)
    if total <= single:
        return 1 if total else 0
    parts, filled = 1, 0
    for cost in costs:
        if filled + cost > per_part:
            parts, filled = parts + 1, 0
        filled += cost
    return parts


def segment(text: str) -> Segmentation:
    """How many SMS parts `text` takes, and in which encoding."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return Segmentation("GSM-7", _parts(costs, 160, 153), sum(costs))
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]  # astral characters: a surrogate pair
    return Segmentation("UCS-2", _parts(costs, 70, 67), sum(costs))


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalise_phone(raw: str) -> str:
    """`raw` in E.164 when it parses as an international number; otherwise as given (it will fail)."""
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_e164(phone: str) -> bool:
    """A `+<country><number>` string that could be a real number (length and country plan)."""
    if not _E164.match(phone):
        return False
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return False
