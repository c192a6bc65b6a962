"""Calls that arrive while the database is busy with earlier ones go together in one
statement: group commit, in the adapter.

A call starts a batch as soon as the event loop has run what was ready with it (the
calls made in the same turn go together) when fewer than `in_flight` batches are
running, so one payment alone waits for nothing. Under load the batches in flight are
busy, the calls that come meanwhile wait, and the next batch takes them all (up to
`largest`): one round trip and one commit for many payments instead of one each.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
ObserveBatch = Callable[[str, int], None]
"""Told each shared statement's name and how many items it carries (a metric)."""


def unobserved(statement: str, items: int) -> None:
    """The `ObserveBatch` that records nothing."""


class Batches(Generic[T, R]):
    """`run` gets the items of a batch and answers, for each in order, its result or the
    exception its caller gets. A batch never holds two items with the same `key`; a
    caller that went away before its batch started is left out of it."""

    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]],
        key: Callable[[T], Hashable],
        *,
        in_flight: int = 1,
        largest: int = 100,
    ) -> None:
        self._run = run
        self._key = key
        self._in_flight = in_flight
        self._largest = largest
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._soon = False

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if not self._soon:
            self._soon = True
            loop.call_soon(self._start_soon)
        return await future

    def _start_soon(self) -> None:
        self._soon = False
        self._start()

    def _start(self) -> None:
        while self._waiting and len(self._running) < self._in_flight:
            batch = self._take()
            if batch:
                task = asyncio.create_task(self._execute(batch))
                self._running.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start()

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[Hashable] = set()
        later = []
        while self._waiting and len(batch) < self._largest:
            item, future = self._waiting.popleft()
            if future.done():  # its caller was cancelled
                continue
            key = self._key(item)
            if key in keys:
                later.append((item, future))
            else:
                keys.add(key)
                batch.append((item, future))
        self._waiting.extendleft(reversed(later))
        return batch

    async def _execute(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # every caller of the batch gets it
            results = [error] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
