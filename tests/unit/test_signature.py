"""Timestamped HMAC signatures: what Stripe's published algorithm accepts, and nothing else."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from gateway import webhooks
from gateway.domain import signature
from gateway.domain.result import Err, Ok

secrets = st.text(min_size=1, max_size=40)
bodies = st.binary(min_size=1, max_size=300)
times = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


def stripe_verify(payload: bytes, header: str, secret: str) -> bool:
    """An independent reading of Stripe's documented scheme."""
    items = [part.split("=", 1) for part in header.split(",")]
    timestamp = next(value for name, value in items if name == "t")
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return any(name == "v1" and hmac.compare_digest(value, expected) for name, value in items)


@given(bodies, secrets, times)
def test_our_signature_verifies_with_stripes_algorithm(body: bytes, secret: str, t: int) -> None:
    header = signature.sign(body, [secret], t)
    assert stripe_verify(body, header, secret)
    assert signature.verify(body, header, secret, now=t) == Ok(t)


@given(bodies, secrets, times, st.data())
def test_flipping_any_body_byte_fails(
    body: bytes, secret: str, t: int, data: st.DataObject
) -> None:
    header = signature.sign(body, [secret], t)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    assert isinstance(signature.verify(tampered, header, secret, now=t), Err)


@given(bodies, secrets, times, st.integers(1, 200))
def test_a_changed_timestamp_fails(body: bytes, secret: str, t: int, shift: int) -> None:
    header = signature.sign(body, [secret], t)
    moved = header.replace(f"t={t}", f"t={t + shift}")
    assert isinstance(signature.verify(body, moved, secret, now=t), Err)


@given(bodies, secrets, times, st.integers(301, 10**6), st.sampled_from([-1, 1]))
def test_timestamps_outside_the_tolerance_fail(
    body: bytes, secret: str, t: int, age: int, sign: int
) -> None:
    header = signature.sign(body, [secret], t)
    assert isinstance(signature.verify(body, header, secret, now=t + sign * age), Err)
    assert signature.verify(body, header, secret, now=t + sign * 300) == Ok(t)


@given(bodies, secrets, secrets, times)
def test_during_rotation_either_secret_verifies(body: bytes, old: str, new: str, t: int) -> None:
    header = signature.sign(body, [new, old], t)
    assert header.count("v1=") == 2
    assert signature.verify(body, header, old, now=t) == Ok(t)
    assert signature.verify(body, header, [new], now=t) == Ok(t)


@given(bodies, secrets, secrets, times)
def test_another_secret_fails(body: bytes, secret: str, other: str, t: int) -> None:
    header = signature.sign(body, [secret], t)
    assert isinstance(signature.verify(body, header, other, now=t), Err) or other == secret


def test_malformed_headers_fail() -> None:
    for header in ["", "t=1", "v1=abc", "t=abc,v1=00", "garbage", "t=1,v0=00"]:
        assert isinstance(signature.verify(b"{}", header, "s", now=1), Err)


def test_the_merchant_helper_verifies_what_it_signs() -> None:
    header = webhooks.sign(b'{"id": "evt_1"}', "whsec_abc")
    assert webhooks.verify(b'{"id": "evt_1"}', header, "whsec_abc")
    assert not webhooks.verify(b'{"id": "evt_2"}', header, "whsec_abc")
    assert not webhooks.verify(b'{"id": "evt_1"}', header, "whsec_other")
