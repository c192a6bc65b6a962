"""Consuming a queue with manual acks, one task per delivery.

The channel's prefetch bounds how many deliveries are in flight, so a slow bank does
not cap throughput at one message per bank round trip. Stopping cancels the consumer,
lets in-flight deliveries finish for a grace period and cancels the rest; their
messages were never acked, so they go back to the queue when the channel closes.

A handler acks through the consumer (`Ack`), which sends the acks of one pass of the
event loop together: one `basic.ack` with `multiple` covers every delivery from the
oldest one outstanding up to the newest one acked, when each of them was settled. It
never covers a delivery still being handled: an ack still comes only after its handler
returned. An ack waiting behind a delivery that is not settled yet is sent on its own
after `straggler_s`. nack and reject are sent at once, as before. A handler that raises
gives its delivery back (nack with requeue) unless it settled it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from aiormq.abc import AbstractChannel

_log = structlog.get_logger("gateway.broker")

Ack = Callable[[AbstractIncomingMessage], Awaitable[None]]
"""Acks one delivery (sent with the others of this pass of the event loop)."""

Handle = Callable[[AbstractIncomingMessage, Ack], Awaitable[None]]
"""Settles one delivery: acks it with `Ack`, or nacks or rejects it itself."""


class _Delivery:
    __slots__ = ("acked", "message", "tag")

    def __init__(self, message: AbstractIncomingMessage, tag: int) -> None:
        self.message = message
        self.tag = tag
        self.acked = False  # its handler acked it; the ack is not sent yet


class ChannelAcks:
    """The outstanding deliveries of one channel, oldest first, and their acks.

    One task writes the acks, in order: a `multiple` ack must not overtake an earlier ack
    of a tag it covers, or the broker closes the channel (unknown delivery tag). Only
    deliveries still being handled stay outstanding past `straggler_s`, so at most the
    prefetch count of them are kept, however long one of them takes.
    """

    def __init__(self, straggler_s: float) -> None:
        self._straggler_s = straggler_s
        self._channel: AbstractChannel | None = None
        self._outstanding: deque[_Delivery] = deque()
        self._by_tag: dict[int, _Delivery] = {}
        self._waiting = 0  # outstanding deliveries acked by their handler
        self._flush_due = False
        self._stragglers: asyncio.TimerHandle | None = None
        self._outgoing: list[tuple[int, bool]] = []
        self._writer: asyncio.Task[None] | None = None

    def delivered(self, message: AbstractIncomingMessage) -> None:
        if message.channel is not self._channel:  # a new channel numbers its tags anew
            self._channel = message.channel
            self._outstanding.clear()
            self._by_tag.clear()
            self._waiting = 0
            self._outgoing = []  # the old channel's acks stay with its writer
            self._writer = None
        if message.delivery_tag is not None:
            delivery = _Delivery(message, message.delivery_tag)
            self._outstanding.append(delivery)
            self._by_tag[delivery.tag] = delivery

    @property
    def outstanding(self) -> int:
        """Deliveries kept: being handled, or settled less than `straggler_s` ago."""
        return len(self._outstanding)

    async def ack(self, message: AbstractIncomingMessage) -> None:
        tag = message.delivery_tag
        delivery = self._by_tag.get(tag) if tag is not None else None
        if delivery is None or delivery.message is not message:  # its channel is gone
            await message.ack()
            return
        if delivery.acked:
            return
        delivery.acked = True
        self._waiting += 1
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        self._send_front()
        if self._waiting and self._stragglers is None:
            loop = asyncio.get_running_loop()
            self._stragglers = loop.call_later(self._straggler_s, self._send_stragglers)

    def _send_front(self) -> None:
        """One `multiple` ack for the settled deliveries at the front."""
        outstanding = self._outstanding
        last: int | None = None
        while outstanding and (outstanding[0].acked or outstanding[0].message.processed):
            delivery = outstanding.popleft()
            del self._by_tag[delivery.tag]
            if delivery.acked:
                last = delivery.tag
                self._waiting -= 1
        if last is not None:
            self._send(last, multiple=True)

    def _send_stragglers(self) -> None:
        """Acks waiting behind a delivery still being handled go out one by one; the
        deliveries nacked or rejected meanwhile are let go too."""
        self._stragglers = None
        self._send_front()
        still: deque[_Delivery] = deque()
        for delivery in self._outstanding:
            if delivery.acked:
                self._send(delivery.tag, multiple=False)
            if delivery.acked or delivery.message.processed:
                del self._by_tag[delivery.tag]
            else:
                still.append(delivery)
        self._outstanding = still
        self._waiting = 0

    def _send(self, tag: int, *, multiple: bool) -> None:
        self._outgoing.append((tag, multiple))
        if (self._writer is None or self._writer.done()) and self._channel is not None:
            self._writer = asyncio.create_task(_write(self._channel, self._outgoing))

    async def send_all(self, timeout_s: float = 5.0) -> None:
        """Sends every ack recorded and waits until they are written (before closing)."""
        if self._stragglers is not None:
            self._stragglers.cancel()
        self._send_stragglers()
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):  # unsent acks: those deliveries come again
                await asyncio.wait_for(asyncio.shield(self._writer), timeout_s)


async def _write(channel: AbstractChannel, outgoing: list[tuple[int, bool]]) -> None:
    """Writes the acks queued in `outgoing` until none is left. Acks that a later
    `multiple` ack covers are left out."""
    while outgoing:
        queued = outgoing.copy()
        outgoing.clear()
        covered = max((tag for tag, multiple in queued if multiple), default=0)
        alone = [tag for tag, _ in queued if tag > covered]
        try:
            if covered:
                await channel.basic_ack(covered, multiple=True)
            for tag in alone:
                await channel.basic_ack(tag)
        except Exception as error:  # the channel is gone: its deliveries return to the queue
            _log.warning("acks_unsent", count=len(queued), error=type(error).__name__)
            outgoing.clear()
            return


class Consumer:
    def __init__(self, queue: AbstractQueue, handle: Handle, *, straggler_s: float = 0.02) -> None:
        self._queue = queue
        self._handle = handle
        self._acks = ChannelAcks(straggler_s)
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
        self._acks.delivered(message)
        task = asyncio.create_task(self._run(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, message: AbstractIncomingMessage) -> None:
        acked = False

        async def ack(delivered: AbstractIncomingMessage) -> None:
            nonlocal acked
            acked = True
            await self._acks.ack(delivered)

        try:
            await self._handle(message, ack)
        except Exception as error:  # a bug, or the nack of a channel lost meanwhile
            _log.warning(
                "delivery_unsettled", message_id=message.message_id, error=type(error).__name__
            )
            if not (acked or message.processed):  # give it back (its delivery count grows)
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)

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
        await self._acks.send_all()
        with contextlib.suppress(Exception):
            await self._queue.channel.close()
