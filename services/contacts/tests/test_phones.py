"""Phone normalisation: the quick path for `+<code> ...` answers exactly what phonenumbers does."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from crm_contacts.phones import to_e164
from crm_kernel.problems import DomainError


def _phonenumbers(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _ours(raw: str) -> str | None:
    try:
        return to_e164(raw, "RU")
    except DomainError:
        return None


def test_international_numbers_normalise_as_phonenumbers_does() -> None:
    rng = random.Random(3)
    valid = 0
    # Country codes with one region, shared ones (+7 RU/KZ, +1 NANP, +44 with crown
    # dependencies), national prefixes after the code, non-geographic codes, leading zeros.
    for code in (7, 1, 44, 49, 380, 375, 998, 33, 39, 86, 91, 800, 882, 61, 55, 90, 0):
        for _ in range(400):
            national = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 13)))
            if rng.random() < 0.5 and code == 7:
                national = rng.choice("3489678") + national[1:]  # mostly real-looking +7 numbers
            spaced = f"+{code} ({national[:3]}) {national[3:6]}-{national[6:8]}.{national[8:]}"
            for raw in (f"+{code}{national}", spaced):
                expected = _phonenumbers(raw)
                assert _ours(raw) == expected, raw
                valid += expected is not None
    assert valid > 500  # the comparison covered many valid numbers, not only rejections


@pytest.mark.parametrize(
    "raw",
    ["8 (912) 345-67-89", "+7 912 3456789", "9123456789", "+7 (912) 345-67-89", "+79123456789"],
)
def test_every_usual_form_of_a_russian_number(raw: str) -> None:
    assert to_e164(raw, "RU") == "+79123456789"


@pytest.mark.parametrize("raw", ["+7 912", "+7 012 345 67 89", "12", "+0 912 345 67 89", "abc"])
def test_not_a_number_is_refused(raw: str) -> None:
    with pytest.raises(DomainError):
        to_e164(raw, "RU")
