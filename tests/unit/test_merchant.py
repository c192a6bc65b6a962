"""API keys: the format, the public prefix and the stored digest."""

from __future__ import annotations

import hashlib
import string
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.merchant import ApiKey, MalformedApiKey, PlainApiKey
from gateway.domain.result import Err, Ok

ALPHANUMERIC = string.ascii_letters + string.digits
well_formed = st.text(ALPHANUMERIC, min_size=40, max_size=40).map(lambda body: "sk_test_" + body)


def key_oracle(raw: str) -> bool:
    body = raw[len("sk_test_") :]
    return raw.startswith("sk_test_") and len(body) == 40 and all(c in ALPHANUMERIC for c in body)


@given(
    st.one_of(
        well_formed,
        st.text(max_size=50),
        st.text(ALPHANUMERIC + "_-", min_size=38, max_size=42).map(lambda b: "sk_test_" + b),
        st.text(ALPHANUMERIC, min_size=40, max_size=40).map(lambda body: "sk_live_" + body),
    )
)
def test_api_key_is_ok_iff_sk_test_and_40_alphanumerics(raw: str) -> None:
    result = PlainApiKey.create(raw)
    if key_oracle(raw):
        assert result == Ok(PlainApiKey(raw))
    else:
        assert result == Err(MalformedApiKey())


@given(well_formed)
def test_prefix_is_sk_test_and_8_chars_and_the_secret_never_shows(raw: str) -> None:
    result = PlainApiKey.create(raw)
    assert isinstance(result, Ok)
    key = result.value
    assert key.prefix == raw[:16]
    assert raw not in repr(key)
    assert raw not in str(key)
    assert str(key).startswith(key.prefix)


@given(well_formed, well_formed)
def test_a_key_matches_only_its_own_sha256_digest(raw: str, other: str) -> None:
    key = PlainApiKey(raw)
    assert key.digest() == hashlib.sha256(raw.encode()).hexdigest()
    assert key.matches(key.digest())
    assert key.matches(PlainApiKey(other).digest()) == (raw == other)


def test_generated_keys_are_well_formed_and_distinct() -> None:
    generated = {PlainApiKey.generate().value for _ in range(200)}
    assert len(generated) == 200
    assert all(key_oracle(value) for value in generated)


def test_a_stored_key_is_active_until_revoked() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    key = ApiKey("key_1", "mer_1", "sk_test_abcdefgh", "d" * 64, now)
    assert key.active
    assert not ApiKey("key_1", "mer_1", "sk_test_abcdefgh", "d" * 64, now, revoked_at=now).active
