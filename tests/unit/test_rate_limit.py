"""Token buckets on a clock the test turns: bursts, refills, independent keys, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.application.rate_limit import RequestLimits, TokenBuckets


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_next_request_waits_for_a_token() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(2.0, 3, clock=clock)

    assert [buckets.take("m") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("m") == pytest.approx(0.5)


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(2.0, 3, clock=clock)
    for _ in range(3):
        buckets.take("m")

    clock.now += 0.5
    assert buckets.take("m") == 0.0
    assert buckets.take("m") > 0
    clock.now += 3600
    assert [buckets.take("m") for _ in range(4)][:3] == [0.0, 0.0, 0.0]


def test_keys_have_buckets_of_their_own() -> None:
    buckets = TokenBuckets(1.0, 1, clock=FakeClock())

    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0


def test_wait_takes_nothing() -> None:
    buckets = TokenBuckets(1.0, 1, clock=FakeClock())

    assert buckets.wait("a") == 0.0
    assert buckets.wait("a") == 0.0
    assert buckets.take("a") == 0.0
    assert buckets.wait("a") == pytest.approx(1.0)


def test_memory_is_bounded_forgetting_full_buckets_first() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(1.0, 5, clock=clock, max_keys=10)
    buckets.take("busy")
    buckets.take("busy")
    for i in range(100):
        buckets.take(f"k{i}")
        clock.now += 0.01

    assert len(buckets) <= 10


@given(st.lists(st.tuples(st.floats(0, 10), st.sampled_from("ab")), max_size=60))
def test_never_more_than_the_burst_plus_what_the_rate_refilled(
    steps: list[tuple[float, str]],
) -> None:
    clock = FakeClock()
    rate, burst = 2.0, 4
    buckets = TokenBuckets(rate, burst, clock=clock)
    started = clock.now
    granted = {"a": 0, "b": 0}
    for pause, key in steps:
        clock.now += pause
        if buckets.take(key) == 0.0:
            granted[key] += 1

    for count in granted.values():
        assert count <= burst + rate * (clock.now - started) + 1e-9


def test_only_failures_count_against_an_address_then_everything_waits() -> None:
    clock = FakeClock()
    limits = RequestLimits.of(100, 200, 3, clock=clock)

    for _ in range(3):
        assert limits.address_blocked("203.0.113.7") == 0.0
        limits.authentication_failed("203.0.113.7")

    assert limits.address_blocked("203.0.113.7") == pytest.approx(20.0)
    assert limits.address_blocked("203.0.113.8") == 0.0
    clock.now += 20
    assert limits.address_blocked("203.0.113.7") == 0.0


def test_zero_switches_a_limit_off() -> None:
    limits = RequestLimits.of(0, 1, 0, clock=FakeClock())

    for _ in range(1000):
        limits.authentication_failed("a")
        assert limits.merchant_request("m") == 0.0
    assert limits.address_blocked("a") == 0.0


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBuckets(0, 1)


def test_merchant_requests_are_limited_from_the_first_one() -> None:
    limits = RequestLimits.of(1.0, 2, 5, clock=FakeClock())

    assert [limits.merchant_request("m") > 0 for _ in range(3)] == [False, False, True]
