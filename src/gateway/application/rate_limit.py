"""Rate limits of the HTTP API as token buckets kept in this process.

Two limits: requests per merchant (after authentication), and failed authentications per
client address. Both live in memory: with N api processes the effective limit is N times
the configured one. The clock is injected (monotonic seconds), so tests control time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Monotonic = Callable[[], float]
MAX_KEYS = 100_000
AUTH_FAILURE_WINDOW_S = 60.0


class TokenBuckets:
    """One bucket per key: `burst` tokens at most, refilled at `rate_per_s`.

    At most `max_keys` buckets are kept; beyond that, full buckets are forgotten first
    (a full bucket is the same as none), then the oldest ones.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        clock: Monotonic = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and room for one token")
        self._rate, self._burst, self._clock, self._max_keys = rate_per_s, burst, clock, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, as of)

    def take(self, key: str) -> float:
        """Takes a token: 0.0 when there was one, else the seconds until there is."""
        tokens, now = self._tokens(key)
        if tokens >= 1:
            self._store(key, tokens - 1, now)
            return 0.0
        self._store(key, tokens, now)
        return (1 - tokens) / self._rate

    def wait(self, key: str) -> float:
        """Seconds until `key` has a token (0.0: it has one now); takes nothing."""
        tokens, _ = self._tokens(key)
        return 0.0 if tokens >= 1 else (1 - tokens) / self._rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str) -> tuple[float, float]:
        now = self._clock()
        tokens, since = self._buckets.get(key, (self._burst, now))
        return min(self._burst, tokens + max(0.0, now - since) * self._rate), now

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._forget(now)

    def _forget(self, now: float) -> None:
        full = [
            key
            for key, (tokens, since) in self._buckets.items()
            if tokens + (now - since) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]
        oldest = iter(list(self._buckets))
        while len(self._buckets) > self._max_keys:
            del self._buckets[next(oldest)]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """`per_merchant`: requests; `auth_failures`: failed authentications per address.

    Only failures count against an address; once its allowance is spent, every attempt
    from it — with a valid key or not — is refused until a token has come back, so a
    guessed key cannot be confirmed by a success. `None` switches a limit off.
    """

    per_merchant: TokenBuckets | None = None
    auth_failures: TokenBuckets | None = None

    @classmethod
    def of(
        cls,
        rate_per_s: float,
        burst: int,
        auth_failures_per_minute: int,
        *,
        clock: Monotonic = time.monotonic,
    ) -> RequestLimits:
        """Zero switches a limit off."""
        merchants = TokenBuckets(rate_per_s, burst, clock=clock) if rate_per_s > 0 else None
        failures = None
        if auth_failures_per_minute > 0:
            refill = auth_failures_per_minute / AUTH_FAILURE_WINDOW_S
            failures = TokenBuckets(refill, auth_failures_per_minute, clock=clock)
        return cls(merchants, failures)

    def address_blocked(self, address: str) -> float:
        """Seconds this address must wait before trying to authenticate again (0.0: none)."""
        return 0.0 if self.auth_failures is None else self.auth_failures.wait(address)

    def authentication_failed(self, address: str) -> None:
        if self.auth_failures is not None:
            self.auth_failures.take(address)

    def merchant_request(self, merchant_id: str) -> float:
        """Takes a request from the merchant's allowance: 0.0, or the seconds to wait."""
        return 0.0 if self.per_merchant is None else self.per_merchant.take(merchant_id)
