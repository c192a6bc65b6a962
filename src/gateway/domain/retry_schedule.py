"""When a failed webhook attempt is tried again.

By default: exponential backoff with jitter (30 s, 1 min, 2 min, … doubling up to 8 h
between attempts) for up to 3 days after the first attempt. An explicit schedule
(`GATEWAY_WEBHOOK_RETRY_SCHEDULE`) is taken exactly, without jitter: `1,1,2` waits 1 s,
1 s, then 2 s, so at most 4 attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FIRST_DELAY_S = 30.0
MAX_DELAY_S = 8 * 3600.0
WINDOW_S = 3 * 86_400.0
JITTER = 0.2


def _exponential() -> tuple[float, ...]:
    delays: list[float] = []
    delay, total = FIRST_DELAY_S, 0.0
    while total + delay <= WINDOW_S:
        delays.append(delay)
        total += delay
        delay = min(delay * 2, MAX_DELAY_S)
    return tuple(delays)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    delays: tuple[float, ...]
    """Seconds to wait before each retry: `delays[0]` after the first attempt, and so on."""
    jitter: float = 0.0
    """Each wait is spread uniformly over ±`jitter` of itself."""

    @classmethod
    def default(cls) -> RetrySchedule:
        return cls(_exponential(), JITTER)

    @classmethod
    def of(cls, exact: Sequence[float]) -> RetrySchedule:
        """The configured schedule if there is one, else the default."""
        return cls(tuple(exact)) if exact else cls.default()

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempt: int, draw: float) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1-based), or None when
        that was the last one. `draw` is a uniform random number in [0, 1)."""
        if not 1 <= attempt <= len(self.delays):
            return None
        nominal = self.delays[attempt - 1]
        return nominal * (1 - self.jitter + 2 * self.jitter * draw)
