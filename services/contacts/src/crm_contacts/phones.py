"""Phone numbers as people type them, normalised to E.164 with phonenumbers.

phonenumbers' `parse` plus `is_valid_number` cost ~0.3 ms a number (most of
an imported row's validation). A number typed in international form
(`+7 912 345-67-89`) takes a shortcut: its country code and national number
are split off as `parse` would, and checked against the same metadata with
the same rules (`_valid`), through regular expressions compiled once. The
shortcut only ever accepts; anything it does not accept, and every other form
(`8 (912) ...`, `9123456789`, extensions, letters), goes the full way, so the
answers are phonenumbers' own (a test compares them on random numbers).
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from crm_kernel.problems import Unprocessable

# `+`, then digits with the separators people type; a national number not starting with 0.
_INTERNATIONAL = re.compile(r"\+\d[\d ()\-.]{6,24}")
_SEPARATORS = re.compile(r"[ ()\-.]")
# The number types whose patterns make a number valid (phonenumbers' _number_type_helper).
# Any one matching will do, so the common ones go first (most numbers stop at one pattern).
_TYPES = (
    "mobile", "fixed_line", "premium_rate", "toll_free", "shared_cost", "voip",
    "personal_number", "pager", "uan", "voicemail",
)  # fmt: skip
Desc = tuple[frozenset[int], re.Pattern[str]]


def to_e164(raw: str, region: str, *, field: str = "phone") -> str:
    """`8 (912) 345-67-89` in region RU -> `+79123456789`; 422 naming the field if it is not a number."""
    quick = _international(raw.strip())
    if quick is not None:
        return quick
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise _invalid(field, raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise _invalid(field, raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _international(raw: str) -> str | None:
    """The E.164 form of a valid `+<country code><number>`, or None (then parse it in full)."""
    if not _INTERNATIONAL.fullmatch(raw):
        return None
    digits = _SEPARATORS.sub("", raw[1:])
    if digits[0] == "0":
        return None  # no country code starts with 0
    # The country code as parse finds it: the shortest known prefix of 1-3 digits.
    code = next((int(digits[:n]) for n in (1, 2, 3) if int(digits[:n]) in _CODES), None)
    if code is None:
        return None
    national = digits[len(str(code)) :]
    main = PhoneMetadata.metadata_for_region(COUNTRY_CODE_TO_REGION_CODE[code][0])
    prefix = _national_prefix(main.id) if main is not None else None
    # A leading 0 or a national prefix after the code: parse may strip it; leave those to it.
    if not national or national[0] == "0" or (prefix is not None and prefix.match(national)):
        return None
    return f"+{code}{national}" if _valid(code, national) else None


_CODES = frozenset(COUNTRY_CODE_TO_REGION_CODE)


def _valid(code: int, national: str) -> bool:
    """phonenumbers.is_valid_number for a number without leading zeros, with compiled patterns."""
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    region = regions[0] if len(regions) == 1 else _region_of(regions, national)
    return region is not None and _known_type(region, national)


def _region_of(regions: tuple[str, ...], national: str) -> str | None:
    """phonenumbers' _region_code_for_number_from_list: leading digits, else a known type."""
    for region in regions:
        if PhoneMetadata.metadata_for_region(region) is None:
            continue
        leading = _leading_digits(region)
        if leading is not None:
            if leading.match(national):
                return region
        elif _known_type(region, national):
            return region
    return None


def _known_type(region: str, national: str) -> bool:
    """phonenumbers' `_number_type_helper(...) != UNKNOWN`."""
    general, types = _descs(region)
    return (
        general is not None
        and _matches(general, national)
        and any(_matches(desc, national) for desc in types)
    )


def _matches(desc: Desc, national: str) -> bool:
    lengths, pattern = desc
    return (not lengths or len(national) in lengths) and pattern.fullmatch(national) is not None


@functools.cache
def _descs(region: str) -> tuple[Desc | None, tuple[Desc, ...]]:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None, ()
    compiled = [_desc(getattr(metadata, name)) for name in _TYPES]
    return _desc(metadata.general_desc), tuple(d for d in compiled if d is not None)


def _desc(desc: object) -> Desc | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None  # matches nothing, as in phonenumbers
    lengths = frozenset(getattr(desc, "possible_length", None) or ())
    return lengths, re.compile(pattern)


@functools.cache
def _leading_digits(region: str) -> re.Pattern[str] | None:
    metadata = PhoneMetadata.metadata_for_region(region)
    leading = metadata.leading_digits if metadata is not None else None
    return re.compile(leading) if leading is not None else None


@functools.cache
def _national_prefix(region: str) -> re.Pattern[str] | None:
    metadata = PhoneMetadata.metadata_for_region(region)
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(prefix) if prefix else None


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
