"""SMS segmentation as phones count it: GSM-7 160/153, UCS-2 70/67, pairs never split."""

from __future__ import annotations

import pytest

from crm_notifications.sms import segment


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # 160 septets: each euro is an escape plus a character
        ("€" * 81, "GSM-7", 2),  # 162 septets; 76 euros fit in 153, the escape pair is not split
        ("a" * 152 + "€", "GSM-7", 1),  # 154 septets still fit one message
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),  # 306 septets, but the pair cannot straddle
        ("a" * 158 + "{", "GSM-7", 1),  # exactly 160
        ("Привет" * 11 + "ПРИВ", "UCS-2", 1),  # 70 characters
        ("П" * 71, "UCS-2", 2),
        ("П" * 134, "UCS-2", 2),
        ("П" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # 70 UTF-16 units
        ("😀" * 36, "UCS-2", 2),  # 33 pairs (66 units) per part: a pair is never split
        ("a" * 66 + "😀", "UCS-2", 1),
        ("Hello ñ", "GSM-7", 1),
        ("Hello ç", "UCS-2", 1),  # lower-case ç is not in GSM-7 (only Ç is)
    ],
)
def test_segments_match_what_a_phone_sends(text: str, encoding: str, segments: int) -> None:
    result = segment(text)
    assert (result.encoding, result.segments) == (encoding, segments)


def test_cyrillic_counts_70_then_67_per_part() -> None:
    assert [segment("Ж" * n).segments for n in (70, 71, 134, 201, 202)] == [1, 2, 2, 3, 4]
