"""Runs `DeliverWebhook` in the background and sweeps up deliveries that are due.

Embedded (`gateway dev`): the in-process publisher hands each new delivery to `submit`,
and the sweep (no grace) makes every retry when `next_attempt_at` comes, so retries
pending at a restart are made after it. Production (`gateway webhooks`): the broker
delivers and delays; the sweep, with a grace period, only rescues deliveries whose
message was lost (an attempt that never reported back, a dropped message).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from gateway.application.ports import Clock
from gateway.application.webhook_ports import DueDeliveries
from gateway.domain.commands import DeliverWebhook


class WebhookDispatcher:
    def __init__(
        self,
        due: DueDeliveries,
        send: Callable[[DeliverWebhook], Awaitable[object]],
        clock: Clock,
        *,
        grace_s: float = 0.0,
        interval_s: float = 0.1,
        batch: int = 100,
        concurrency: int = 64,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._due = due
        self._send = send
        self._clock = clock
        self._grace = timedelta(seconds=grace_s)
        self._interval_s = interval_s
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._on_error = on_error
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def submit(self, command: DeliverWebhook) -> None:
        """Starts the attempt in the background unless this delivery is already running."""
        if command.delivery_id in self._running:
            return
        task = asyncio.create_task(self._deliver(command))
        self._running[command.delivery_id] = task
        task.add_done_callback(lambda _: self._running.pop(command.delivery_id, None))

    async def _deliver(self, command: DeliverWebhook) -> None:
        async with self._slots:
            try:
                await self._send(command)
            except Exception as error:  # noted; the delivery's schedule brings it back
                if self._on_error is not None:
                    self._on_error(error)

    async def sweep_once(self) -> int:
        """Submits the deliveries that are due; returns how many."""
        due = await self._due.due(self._clock.now() - self._grace, self._batch)
        for item in due:
            self.submit(DeliverWebhook(item.delivery_id, item.attempt))
        return len(due)

    async def run(self, stop: asyncio.Event, *, grace_s: float = 5.0) -> None:
        """Sweeps until `stop`; then lets attempts in flight finish for `grace_s`."""
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception as error:
                if self._on_error is not None:
                    self._on_error(error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
        await self.drain(grace_s)

    async def drain(self, grace_s: float) -> None:
        tasks = set(self._running.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
