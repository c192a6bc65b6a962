"""Timestamped HMAC-SHA256 signatures, the scheme Stripe publishes.

Header: `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where each `v1` is the HMAC-SHA256 of
`"<t>.<raw body>"` under one secret (several during a secret rotation). Used both for the
bank's callbacks to us (`Bank-Signature`) and for our events to merchants
(`Gateway-Signature`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.domain.result import Err, Ok, Result

SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


@dataclass(frozen=True, slots=True)
class SignatureInvalid:
    reason: str


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The header value: one `v1` per active secret."""
    parts = [f"t={timestamp}", *(f"{SCHEME}={compute(payload, s, timestamp)}" for s in secrets)]
    return ",".join(parts)


def parse(header: str) -> Result[tuple[int, list[str]], SignatureInvalid]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == SCHEME and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        return Err(SignatureInvalid("the header needs t=<unix seconds> and at least one v1"))
    return Ok((timestamp, signatures))


def verify(
    payload: bytes,
    header: str,
    secrets: Sequence[str] | str,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_S,
) -> Result[int, SignatureInvalid]:
    """`Ok(timestamp)` when a `v1` matches one secret and `t` is within ±tolerance of now."""
    match parse(header):
        case Err(error):
            return Err(error)
        case Ok((timestamp, signatures)):
            pass
    if abs(now - timestamp) > tolerance:
        return Err(SignatureInvalid("the timestamp is outside the tolerance"))
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    matched = False
    for secret in candidates:
        expected = compute(payload, secret, timestamp)
        for signature in signatures:
            # Compare every pair: the time taken says nothing about which one matched.
            matched |= hmac.compare_digest(expected.encode(), signature.encode())
    return Ok(timestamp) if matched else Err(SignatureInvalid("no signature matches"))
