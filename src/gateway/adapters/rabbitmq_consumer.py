"""Consuming a queue with manual acks, one task per delivery.

The channel's prefetch bounds how many deliveries are in flight, so a slow bank does
not cap throughput at one message per bank round trip. Stopping cancels the consumer,
lets in-flight deliveries finish for a grace period and cancels the rest; their
messages were never acked, so they go back to the queue when the channel closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

_log = structlog.get_logger("gateway.broker")

Handle = Callable[[AbstractIncomingMessage], Awaitable[None]]
"""Settles one delivery: acks, nacks or rejects it."""


class Consumer:
    def __init__(self, queue: AbstractQueue, handle: Handle) -> None:
        self._queue = queue
        self._handle = handle
        self._tasks: set[asyncio.Task[None]] = set()
        self._tag: str | None = None
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping:  # sent before the broker saw the cancel: give it back now
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        task = asyncio.create_task(self._run(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._handle(message)
        except Exception as error:  # e.g. the ack of a channel lost meanwhile
            _log.warning(
                "delivery_unsettled", message_id=message.message_id, error=type(error).__name__
            )

    async def stop(self, grace_s: float) -> None:
        """Stops taking deliveries, waits up to `grace_s` for the in-flight ones, cancels
        the rest and closes the channel (unacked messages return to the queue)."""
        self._stopping = True
        if self._tag is not None:
            with contextlib.suppress(Exception):  # the broker may be gone
                await asyncio.wait_for(self._queue.cancel(self._tag), timeout=5)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                _log.warning("deliveries_returned", count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._queue.channel.close()
