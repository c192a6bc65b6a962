"""The card vault and the request fingerprints."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters.crypto import AesGcmCardVault, HmacFingerprinter, derive_keys
from gateway.application.ports import CardUnreadable
from gateway.domain.card import Card, CardNumber, CardScheme, Cvv, Expiry, HolderName
from gateway.domain.result import Err, Ok

MASTER = bytes(range(32))
KEYS = derive_keys(MASTER)
VISA = Card(
    CardNumber("4242424242424242", CardScheme.VISA),
    Expiry(12, 2030),
    Cvv("123"),
    HolderName("Jane Doe"),
)
AMEX = Card(CardNumber("378282246310005", CardScheme.AMEX), Expiry(1, 2027), Cvv("1234"), None)


def test_derived_keys_are_distinct_stable_and_hidden() -> None:
    assert len(KEYS.vault) == len(KEYS.fingerprint) == 32
    assert KEYS.vault != KEYS.fingerprint
    assert MASTER not in (KEYS.vault, KEYS.fingerprint)
    assert derive_keys(MASTER) == KEYS
    assert derive_keys(bytes(32)) != KEYS
    assert KEYS.vault.hex() not in repr(KEYS)
    assert str(KEYS.vault) not in repr(KEYS)


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_a_master_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        derive_keys(bytes(size))


@pytest.mark.parametrize("card", [VISA, AMEX], ids=["visa", "amex-without-holder"])
def test_sealed_card_opens_to_the_same_card(card: Card) -> None:
    vault = AesGcmCardVault(KEYS.vault)
    assert vault.open("pay_1", vault.seal("pay_1", card)) == Ok(card)


def test_sealed_card_holds_no_card_data_in_clear_and_differs_each_time() -> None:
    vault = AesGcmCardVault(KEYS.vault)
    first, second = vault.seal("pay_1", VISA), vault.seal("pay_1", VISA)
    assert first != second
    assert first[0] == 1
    for secret in (b"4242424242424242", b"Jane Doe", b"2030"):
        assert secret not in first
    assert KEYS.vault.hex() not in repr(vault)


def test_an_expired_card_still_opens() -> None:
    vault = AesGcmCardVault(KEYS.vault)
    old = Card(CardNumber("4242424242424242", CardScheme.VISA), Expiry(1, 2001), Cvv("123"), None)
    assert vault.open("pay_1", vault.seal("pay_1", old)) == Ok(old)


SEALED = AesGcmCardVault(KEYS.vault).seal("pay_1", VISA)


@settings(max_examples=150)
@given(st.integers(min_value=0, max_value=len(SEALED) - 1), st.integers(min_value=1, max_value=255))
def test_changing_any_byte_makes_it_unreadable(index: int, flip: int) -> None:
    tampered = bytearray(SEALED)
    tampered[index] ^= flip
    assert AesGcmCardVault(KEYS.vault).open("pay_1", bytes(tampered)) == Err(CardUnreadable())


@given(st.binary(max_size=120))
def test_arbitrary_bytes_are_unreadable_never_an_exception(data: bytes) -> None:
    assert AesGcmCardVault(KEYS.vault).open("pay_1", data) == Err(CardUnreadable())


def test_truncated_or_extended_data_is_unreadable() -> None:
    vault = AesGcmCardVault(KEYS.vault)
    for data in (SEALED[:-1], SEALED[:29], SEALED + b"\x00", b"", SEALED[1:]):
        assert vault.open("pay_1", data) == Err(CardUnreadable())


def test_another_payment_id_cannot_open_it() -> None:
    vault = AesGcmCardVault(KEYS.vault)
    for payment_id in ("pay_2", "pay_", "pay_1 ", "", "pay_\udcff"):
        assert vault.open(payment_id, SEALED) == Err(CardUnreadable())


def test_another_key_cannot_open_it() -> None:
    other = AesGcmCardVault(derive_keys(bytes(32)).vault)
    assert other.open("pay_1", SEALED) == Err(CardUnreadable())
    assert AesGcmCardVault(KEYS.fingerprint).open("pay_1", SEALED) == Err(CardUnreadable())


@pytest.mark.parametrize("size", [0, 16, 24, 31])
def test_the_vault_needs_a_32_byte_key(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        AesGcmCardVault(bytes(size))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=6)
FINGERPRINTS = HmacFingerprinter(KEYS.fingerprint)


def reordered(value: object) -> object:
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


@given(objects)
def test_equal_json_values_have_equal_fingerprints_whatever_the_layout(body: object) -> None:
    printed = json.dumps(reordered(body), indent=3, ensure_ascii=False)
    assert FINGERPRINTS.fingerprint(json.loads(printed)) == FINGERPRINTS.fingerprint(body)


@given(objects, st.text(min_size=1, max_size=6), json_values)
def test_a_changed_value_changes_the_fingerprint(
    body: dict[str, object], key: str, value: object
) -> None:
    changed = {**body, key: value}
    if changed != body:
        assert FINGERPRINTS.fingerprint(changed) != FINGERPRINTS.fingerprint(body)


def test_a_fingerprint_is_keyed_hex_and_never_a_plain_hash_of_the_card() -> None:
    body = {"card": {"number": "4242424242424242"}, "amount": 1050}
    digest = FINGERPRINTS.fingerprint(body)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert digest != hashlib.sha256(canonical).hexdigest()
    assert digest != HmacFingerprinter(derive_keys(bytes(32)).fingerprint).fingerprint(body)


def test_a_short_fingerprint_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        HmacFingerprinter(b"short")
