"""Time-ordered ids and the system clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.clock import SystemClock
from gateway.adapters.ids import CROCKFORD, TimeOrderedIds, encode, id_at

LAST_MS_OF_YEAR_9999 = 253_402_300_799_999
ID = re.compile(r"^pay_[0-9A-HJKMNP-TV-Z]{26}$")


def decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + CROCKFORD.index(char)
    return value


@given(st.integers(min_value=0, max_value=(1 << 130) - 1))
def test_encode_writes_130_bits_as_26_characters_that_decode_back(value: int) -> None:
    assert len(encode(value)) == 26
    assert decode(encode(value)) == value
    assert decode(encode(value + (1 << 130))) == value  # only the last 130 bits


def test_an_id_is_the_prefix_and_26_crockford_characters() -> None:
    made = TimeOrderedIds().new("pay")
    assert ID.match(made), made
    assert TimeOrderedIds().new("job").startswith("job_")


def test_ids_are_unique_and_sort_in_creation_order() -> None:
    ids = TimeOrderedIds()
    made = [ids.new("pay") for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert sorted(made) == made


def test_the_first_48_bits_are_the_milliseconds() -> None:
    ids = TimeOrderedIds(clock_ms=lambda: 1_700_000_000_123)
    value = decode(ids.new("pay")[4:])
    assert value >> 80 == 1_700_000_000_123
    assert value < 1 << 128


def test_ids_within_one_millisecond_count_up() -> None:
    ids = TimeOrderedIds(clock_ms=lambda: 5, random_bits=lambda bits: 41)
    values = [decode(ids.new("pay")[4:]) for _ in range(3)]
    assert values == [(5 << 80) + 41, (5 << 80) + 42, (5 << 80) + 43]


def test_ids_stay_ordered_when_the_clock_steps_back() -> None:
    times = iter([1_000, 2_000, 1_500, 1_999, 2_001])
    ids = TimeOrderedIds(clock_ms=lambda: next(times))
    made = [ids.new("pay") for _ in range(5)]
    assert sorted(made) == made
    assert len(set(made)) == 5


def test_a_full_millisecond_moves_on_to_the_next() -> None:
    ids = TimeOrderedIds(clock_ms=lambda: 7, random_bits=lambda bits: (1 << bits) - 1)
    first, second = ids.new("pay"), ids.new("pay")
    assert decode(second[4:]) >> 80 == 8
    assert first < second


@pytest.mark.parametrize("prefix", ["", "pay_", "pa y", "päy"])
def test_a_prefix_must_be_ascii_letters_and_digits(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        TimeOrderedIds().new(prefix)


def test_the_system_clock_is_aware_utc_now() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


@given(
    made_ms=st.integers(0, 2**48 - 1),
    cutoff_ms=st.integers(0, LAST_MS_OF_YEAR_9999),  # what a datetime can hold
    random_part=st.integers(0, 2**80 - 1),
)
def test_id_at_separates_the_ids_made_before_a_moment_from_the_later_ones(
    made_ms: int, cutoff_ms: int, random_part: int
) -> None:
    made = TimeOrderedIds(lambda: made_ms, lambda _bits: random_part).new("msg")
    cutoff = datetime.fromtimestamp(cutoff_ms / 1000, UTC)
    bound = id_at("msg", cutoff)

    assert len(bound) == len(made)
    assert (made < bound) == (made_ms < int(cutoff.timestamp() * 1000))
