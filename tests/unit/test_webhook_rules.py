"""Pure webhook rules: which addresses are internal, which URLs parse, the retry schedule,
sealed secrets, and what a `Gateway-Signature` verification rejects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import webhooks
from gateway.adapters.crypto import AesGcmSecretBox, derive_keys
from gateway.domain.result import Err, Ok
from gateway.domain.retry_schedule import RetrySchedule
from gateway.domain.webhook_url import is_internal, parse_url

INTERNAL = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "not-an-address",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_recognised(address: str) -> None:
    assert is_internal(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not_internal(address: str) -> None:
    assert not is_internal(address)


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        ("https://hooks.example.com/x?y=1", "hooks.example.com", 443),
        ("http://127.0.0.1:9000/hooks", "127.0.0.1", 9000),
        ("HTTPS://[::1]:8443/", "::1", 8443),
    ],
)
def test_absolute_http_urls_parse(raw: str, host: str, port: int) -> None:
    parsed = parse_url(raw)
    assert isinstance(parsed, Ok)
    assert (parsed.value.host, parsed.value.port) == (host, port)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "/relative",
        "example.com",
        "mailto:a@b.c",
        "https://",
        "https://a b/",
        "https://x:99999/",
    ],
)
def test_other_strings_are_not_urls(raw: str) -> None:
    assert isinstance(parse_url(raw), Err)


def test_the_default_schedule_backs_off_exponentially_for_up_to_three_days() -> None:
    schedule = RetrySchedule.default()

    nominal = [schedule.delay_after(n, 0.5) for n in range(1, schedule.max_attempts)]

    assert nominal[:4] == [30.0, 60.0, 120.0, 240.0]
    assert max(d for d in nominal if d is not None) == 8 * 3600
    assert sum(d for d in nominal if d is not None) <= 3 * 86_400
    assert schedule.delay_after(schedule.max_attempts, 0.5) is None


@given(attempt=st.integers(1, 17), draw=st.floats(0, 1, exclude_max=True))
def test_jitter_stays_within_a_fifth_of_the_nominal_delay(attempt: int, draw: float) -> None:
    schedule = RetrySchedule.default()
    nominal = schedule.delays[attempt - 1]

    delay = schedule.delay_after(attempt, draw)

    assert delay is not None
    assert 0.8 * nominal <= delay <= 1.2 * nominal


def test_a_configured_schedule_is_taken_exactly() -> None:
    schedule = RetrySchedule.of((1.0, 1.0, 2.0))

    assert schedule.max_attempts == 4
    assert [schedule.delay_after(n, 0.99) for n in (1, 2, 3, 4)] == [1.0, 1.0, 2.0, None]


def test_sealed_secrets_open_only_for_their_endpoint() -> None:
    box = AesGcmSecretBox(derive_keys(bytes(32)).webhook_secrets)
    sealed = box.seal("we_1", "whsec_abc")

    assert b"whsec_abc" not in sealed
    assert box.open("we_1", sealed) == "whsec_abc"
    assert box.open("we_2", sealed) is None
    assert box.open("we_1", sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert "abc" not in repr(box)


def test_the_webhook_key_is_distinct_from_the_card_keys() -> None:
    keys = derive_keys(bytes(range(32)))
    assert keys.webhook_secrets not in (keys.vault, keys.fingerprint)


BODY = b'{"id":"evt_1","type":"payment.authorized","created_at":"2026-11-23T18:00:00Z","data":{}}'


def test_flipping_any_body_byte_or_the_timestamp_fails_verification() -> None:
    header = webhooks.sign(BODY, "whsec_x")
    assert webhooks.verify(BODY, header, "whsec_x")

    for index in range(len(BODY)):
        flipped = BODY[:index] + bytes([BODY[index] ^ 0x01]) + BODY[index + 1 :]
        assert not webhooks.verify(flipped, header, "whsec_x"), index
    t, rest = header.split(",", 1)
    moved = f"t={int(t.removeprefix('t=')) - 1},{rest}"
    assert not webhooks.verify(BODY, moved, "whsec_x")
    assert not webhooks.verify(BODY, header, "whsec_other")
