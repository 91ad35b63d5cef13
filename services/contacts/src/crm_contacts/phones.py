"""Phone numbers as people type them, normalised to E.164 with phonenumbers."""

from __future__ import annotations

import phonenumbers

from crm_kernel.problems import Unprocessable


def to_e164(raw: str, region: str, *, field: str = "phone") -> str:
    """`8 (912) 345-67-89` in region RU -> `+79123456789`; 422 naming the field if it is not a number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise _invalid(field, raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise _invalid(field, raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _invalid(field: str, raw: str) -> Unprocessable:
    return Unprocessable(
        f"{raw!r} is not a valid phone number.",
        errors=[
            {
                "field": field,
                "location": "body",
                "message": "not a valid phone number",
                "type": "value_error.phone",
            }
        ],
    )
