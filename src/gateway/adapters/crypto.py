"""Card data sealed with AES-GCM and request bodies fingerprinted with HMAC-SHA256.

Both keys come from one 32-byte master key through HKDF-SHA256, one label per use,
so the key that seals cards never doubles as the key that fingerprints bodies. A third
derived key seals merchants' webhook signing secrets (`AesGcmSecretBox`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.application.ports import CardUnreadable
from gateway.domain.card import Card, CardNumber, Cvv, Expiry, HolderName
from gateway.domain.result import Err, Ok, Result

# Made once: `json.dumps` with arguments builds a new encoder on every call. The canonical
# form must never change: stored fingerprints are compared with new ones.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)

MASTER_KEY_BYTES = 32
_VAULT_INFO = b"gateway/card-vault/v1"
_FINGERPRINT_INFO = b"gateway/request-fingerprint/v1"
_WEBHOOK_SECRETS_INFO = b"gateway/webhook-secrets/v1"
_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16


@dataclass(frozen=True, slots=True)
class DerivedKeys:
    vault: bytes = field(repr=False)
    fingerprint: bytes = field(repr=False)
    webhook_secrets: bytes = field(repr=False)


def derive_keys(master: bytes) -> DerivedKeys:
    if len(master) != MASTER_KEY_BYTES:
        raise ValueError(f"the master key must be {MASTER_KEY_BYTES} bytes")
    return DerivedKeys(
        vault=_hkdf(master, _VAULT_INFO),
        fingerprint=_hkdf(master, _FINGERPRINT_INFO),
        webhook_secrets=_hkdf(master, _WEBHOOK_SECRETS_INFO),
    )


def _hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class AesGcmCardVault:
    """`version ‖ nonce ‖ AES-GCM(card JSON)`, authenticated with the payment id."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the vault key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "AesGcmCardVault()"

    def seal(self, payment_id: str, card: Card) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        plain = _card_json(card)
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, payment_id.encode())

    def open(self, payment_id: str, sealed: bytes) -> Result[Card, CardUnreadable]:
        if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES or sealed[:1] != _VERSION:
            return Err(CardUnreadable())
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            plain = self._aead.decrypt(nonce, ciphertext, payment_id.encode())
            return _card_from_json(plain)
        except (InvalidTag, ValueError, TypeError, KeyError):
            return Err(CardUnreadable())


def _card_json(card: Card) -> bytes:
    fields = {
        "n": card.number.digits,
        "c": card.cvv.digits,
        "m": card.expiry.month,
        "y": card.expiry.year,
        "h": card.holder_name.value if card.holder_name else None,
    }
    return msgspec.json.encode(fields)


def _card_from_json(plain: bytes) -> Result[Card, CardUnreadable]:
    fields = msgspec.json.decode(plain)
    month, year, holder = fields["m"], fields["y"], fields["h"]
    number, cvv = CardNumber.create(fields["n"]), None
    if isinstance(number, Ok):
        cvv = Cvv.create(fields["c"], number.value.scheme)
    if (
        not isinstance(number, Ok)
        or not isinstance(cvv, Ok)
        or type(month) is not int
        or type(year) is not int
        or not (holder is None or isinstance(holder, str))
    ):
        return Err(CardUnreadable())
    # The expiry is not checked against today: a card may expire after it was accepted.
    name = HolderName(holder) if holder is not None else None
    return Ok(Card(number.value, Expiry(month, year), cvv.value, name))


class HmacFingerprinter:
    """HMAC-SHA256 of canonical JSON: equal JSON values give equal fingerprints."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the fingerprint key must be at least 16 bytes")
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)  # copied for each message

    def __repr__(self) -> str:
        return "HmacFingerprinter()"

    def fingerprint(self, body: object) -> str:
        canonical = _CANONICAL.encode(body)
        mac = self._keyed.copy()
        mac.update(canonical.encode())
        return mac.hexdigest()


class AesGcmSecretBox:
    """Webhook signing secrets at rest: `version ‖ nonce ‖ AES-GCM(secret)`, authenticated
    with the endpoint id, under a key of its own derived from the master key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the webhook secrets key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "AesGcmSecretBox()"

    def seal(self, endpoint_id: str, secret: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, secret.encode(), endpoint_id.encode())

    def open(self, endpoint_id: str, sealed: bytes) -> str | None:
        if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES or sealed[:1] != _VERSION:
            return None
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, endpoint_id.encode()).decode()
        except (InvalidTag, UnicodeDecodeError):
            return None
