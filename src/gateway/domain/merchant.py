"""Merchants and their API keys. A key is shown once; only its digest is kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime

from gateway.domain.result import Err, Ok, Result

KEY_PREFIX = "sk_test_"
LOOKUP_LENGTH = 8
SECRET_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MalformedApiKey:
    """Not of the form `sk_test_<40 alphanumerics>`."""


@dataclass(frozen=True, slots=True)
class PlainApiKey:
    """The secret as the merchant holds it. Never in `repr`; never stored."""

    value: str = field(repr=False)

    @classmethod
    def create(cls, raw: str) -> Result[PlainApiKey, MalformedApiKey]:
        body = raw.removeprefix(KEY_PREFIX)
        if (
            not raw.startswith(KEY_PREFIX)
            or len(body) != LOOKUP_LENGTH + SECRET_LENGTH
            or not (body.isascii() and body.isalnum())  # exactly the letters and digits
        ):
            return Err(MalformedApiKey())
        return Ok(cls(raw))

    @classmethod
    def generate(cls) -> PlainApiKey:
        body = "".join(secrets.choice(_ALPHABET) for _ in range(LOOKUP_LENGTH + SECRET_LENGTH))
        return cls(KEY_PREFIX + body)

    @property
    def prefix(self) -> str:
        """The public part used to find the key: `sk_test_` and 8 characters."""
        return self.value[: len(KEY_PREFIX) + LOOKUP_LENGTH]

    def digest(self) -> str:
        return hashlib.sha256(self.value.encode()).hexdigest()

    def matches(self, digest: str) -> bool:
        return hmac.compare_digest(self.digest(), digest)

    def __str__(self) -> str:
        return f"{self.prefix}…"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: prefix and digest only."""

    id: str
    merchant_id: str
    prefix: str
    digest: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
