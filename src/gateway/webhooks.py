"""For merchants: verify a `Gateway-Signature` header on a webhook the gateway sent.

    from gateway.webhooks import verify
    if not verify(request_body_bytes, request.headers["Gateway-Signature"], "whsec_..."):
        return 400

`payload` must be the raw body exactly as received (before any JSON parsing).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from gateway.domain import signature
from gateway.domain.result import Ok


def verify(
    payload: bytes,
    header: str,
    secret: str | Sequence[str],
    tolerance: int = signature.DEFAULT_TOLERANCE_S,
) -> bool:
    """True when one `v1` in `header` is the HMAC-SHA256 of `"<t>.<payload>"` under `secret`
    (or one of several secrets) and `t` is within `tolerance` seconds of now."""
    outcome = signature.verify(payload, header, secret, now=int(time.time()), tolerance=tolerance)
    return isinstance(outcome, Ok)


def sign(payload: bytes, secret: str | Sequence[str], timestamp: int | None = None) -> str:
    """A header value as the gateway would send it: useful to test a receiver."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return signature.sign(payload, secrets, int(time.time()) if timestamp is None else timestamp)
