"""The outbox relay: hands unsent outbox rows to a publisher, marks them sent after.

At-least-once: a row is marked sent only once the publisher confirmed it, so a crash in
between sends it again, and consumers are idempotent. Several relays may run at once:
the store's claim never gives the same row to two of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

from gateway.application.ports import OutboxStore, Publisher


class Relay:
    def __init__(
        self,
        store: OutboxStore,
        publisher: Publisher,
        *,
        batch_size: int = 200,
        idle_s: float = 0.05,
        max_backoff_s: float = 10.0,
        on_error: Callable[[Exception, float], None] | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_s = idle_s
        self._max_backoff_s = max_backoff_s
        self._on_error = on_error
        self.published = 0

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were sent."""
        async with self._store.claim(self._batch_size) as batch:
            if not batch.messages:
                return 0
            await self._publisher.publish(batch.messages)
            await batch.mark_sent()
        self.published += len(batch.messages)
        return len(batch.messages)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; backs off exponentially (with jitter) while failing."""
        failures = 0
        while not stop.is_set():
            try:
                sent = await self.relay_once()
                failures = 0
            except Exception as error:
                failures += 1
                delay = min(self._max_backoff_s, 0.1 * 2**failures) * random.uniform(0.5, 1.0)  # noqa: S311
                if self._on_error is not None:
                    self._on_error(error, delay)
                await _sleep_unless(stop, delay)
                continue
            if sent < self._batch_size:
                await _sleep_unless(stop, self._idle_s)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
