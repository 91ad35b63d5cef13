"""Record and event ids: UUIDv7, strictly increasing, carrying their creation time."""

from __future__ import annotations

import itertools
import time
import uuid

from crm_kernel import ids
from crm_kernel.ids import new_id


def test_ids_made_in_a_burst_increase_and_keep_their_real_time() -> None:
    before_ms = time.time_ns() // 1_000_000
    made = [new_id() for _ in range(50_000)]
    after_ms = time.time_ns() // 1_000_000

    assert all(a.int < b.int for a, b in itertools.pairwise(made))
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in made)
    # 50,000 ids take far less than 50 s: none may claim a time after they were all made.
    assert before_ms <= made[0].int >> 80
    assert made[-1].int >> 80 <= after_ms


def test_an_exhausted_millisecond_borrows_the_next_and_stays_valid() -> None:
    last = (123 << 80) | ids._VERSION_AND_VARIANT | (0xFFF << 64) | ((1 << 62) - 1)
    following = ids._next_after(last)
    assert following > last
    assert following >> 80 == 124
    assert (following >> 76) & 0xF == 7 and (following >> 62) & 0b11 == 0b10
