"""Embedded delivery: the outbox relay hands `MakePayment` straight to its handler.

A row is marked sent only after its handler returned, so a payment accepted before a
crash is processed after the restart; the handler is idempotent, so a repeat is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from gateway.application.ports import OutboxMessage
from gateway.domain.commands import DeliverWebhook, MakePayment


class InProcessPublisher:
    def __init__(
        self,
        handle: Callable[[MakePayment], Awaitable[object]],
        concurrency: int = 256,
        webhooks: Callable[[DeliverWebhook], None] | None = None,
    ) -> None:
        """`webhooks`: takes each `DeliverWebhook` without waiting for its attempt (the
        delivery row makes it durable: the dispatcher's sweep finds it if it is lost)."""
        self._handle = handle
        self._slots = asyncio.Semaphore(concurrency)
        self._webhooks = webhooks

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        outcomes = await asyncio.gather(
            *(self._deliver(message) for message in messages), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # the batch stays unsent and comes back: handlers are idempotent

    async def _deliver(self, message: OutboxMessage) -> None:
        if message.kind == "DeliverWebhook" and self._webhooks is not None:
            payload = message.payload
            self._webhooks(DeliverWebhook(payload["delivery_id"], int(payload["attempt"])))
            return
        if message.kind != "MakePayment":
            return
        command = MakePayment(
            payment_id=message.payload["payment_id"],
            job_id=message.payload["job_id"],
            merchant_id=message.payload["merchant_id"],
        )
        async with self._slots:
            await self._handle(command)
