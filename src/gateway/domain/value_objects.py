"""Small value objects of a payment request besides money and card."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.domain.errors import FieldError, IdempotencyKeyInvalid
from gateway.domain.result import Err, Ok, Result

MAX_REFERENCE = 50
MAX_METADATA_KEYS = 20
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True, slots=True)
class Reference:
    """The merchant's own reference for a payment (an order number)."""

    value: str

    @classmethod
    def create(cls, raw: object, param: str = "reference") -> Result[Reference, FieldError]:
        if not isinstance(raw, str) or not 1 <= len(raw) <= MAX_REFERENCE or not raw.isprintable():
            message = f"must be a printable string of 1-{MAX_REFERENCE} characters"
            return Err(FieldError(param, "reference_invalid", message))
        return Ok(cls(raw))


@dataclass(frozen=True, slots=True)
class Metadata:
    entries: Mapping[str, str]

    @classmethod
    def create(cls, raw: object, param: str = "metadata") -> Result[Metadata, FieldError]:
        message = (
            f"must be an object of at most {MAX_METADATA_KEYS} keys of 1-{MAX_METADATA_KEY}"
            f" characters with string values of at most {MAX_METADATA_VALUE} characters"
        )
        if not isinstance(raw, dict) or len(raw) > MAX_METADATA_KEYS:
            return Err(FieldError(param, "metadata_invalid", message))
        for key, value in raw.items():
            key_ok = isinstance(key, str) and 1 <= len(key) <= MAX_METADATA_KEY
            if not key_ok or not isinstance(value, str) or len(value) > MAX_METADATA_VALUE:
                return Err(FieldError(param, "metadata_invalid", message))
            if "\x00" in key or "\x00" in value:  # text, not binary: C strings stop there
                return Err(FieldError(param, "metadata_invalid", "must not contain NUL"))
        return Ok(cls(MappingProxyType(dict(raw))))

    @classmethod
    def empty(cls) -> Metadata:
        return cls(MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    value: str

    @classmethod
    def create(cls, raw: str) -> Result[IdempotencyKey, IdempotencyKeyInvalid]:
        printable_ascii = all(" " <= char <= "~" for char in raw)
        if not 1 <= len(raw) <= MAX_IDEMPOTENCY_KEY or not printable_ascii:
            message = f"must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            return Err(IdempotencyKeyInvalid(message))
        return Ok(cls(raw))
