"""How the worker settles a delivery: the ack comes only after the handler returned.

The `MakePayment` handler commits the outcome before it returns, so an ack never runs
ahead of the database; a crash in between redelivers a message the handler then finds
final. A handler that raises is retried after a pause (the quorum queue's delivery limit
dead-letters it in the end); an unreadable message goes to the dead-letter queue at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractIncomingMessage

from gateway.adapters.rabbitmq_consumer import Ack
from gateway.adapters.rabbitmq_messages import decode_dead_letter, decode_make_payment
from gateway.domain.commands import AbandonPayment, MakePayment
from gateway.domain.result import Err

_log = structlog.get_logger("gateway.worker")

Healthy = Callable[[], Awaitable[bool]]


async def _always() -> bool:
    return True


class _Retrying:
    """A failed delivery is given back after a pause that grows with its delivery count.

    While `healthy()` says a dependency (the database) is down, the message is held first:
    an outage must not use up the deliveries the broker allows before dead-lettering.
    """

    def __init__(self, retry_delay_s: float, max_retry_delay_s: float, healthy: Healthy) -> None:
        self._retry_delay_s = retry_delay_s
        self._max_retry_delay_s = max_retry_delay_s
        self._healthy = healthy

    def _delay(self, message: AbstractIncomingMessage) -> float:
        count = (message.headers or {}).get("x-delivery-count", 0)
        attempt = count if isinstance(count, int) else 0
        return float(min(self._max_retry_delay_s, self._retry_delay_s * 2**attempt))

    async def _retry_later(self, message: AbstractIncomingMessage, **ids: str) -> None:
        delay = self._delay(message)
        _log.warning("message_retry", message_id=message.message_id, retry_in_s=delay, **ids)
        await asyncio.sleep(delay)
        while not await self._is_healthy():  # noqa: ASYNC110 - polls; nothing to wait on
            await asyncio.sleep(min(delay, 1.0))
        await message.nack(requeue=True)

    async def _is_healthy(self) -> bool:
        try:
            return await self._healthy()
        except Exception:
            return False


class PaymentDeliveries(_Retrying):
    """`MakePayment` deliveries → the handler → ack."""

    def __init__(
        self,
        send: Callable[[MakePayment], Awaitable[object]],
        *,
        retry_delay_s: float = 0.5,
        max_retry_delay_s: float = 10.0,
        healthy: Healthy = _always,
    ) -> None:
        super().__init__(retry_delay_s, max_retry_delay_s, healthy)
        self._send = send

    async def __call__(self, message: AbstractIncomingMessage, ack: Ack) -> None:
        command = decode_make_payment(message)
        if command is None:
            _log.error("message_unreadable", message_id=message.message_id)
            await message.reject(requeue=False)
            return
        try:
            outcome = await self._send(command)
        except Exception:
            await self._retry_later(message, payment_id=command.payment_id)
            return
        if isinstance(outcome, Err):
            _log.warning("payment_not_found", payment_id=command.payment_id)
        await ack(message)


class DeadLetters(_Retrying):
    """Dead-lettered `MakePayment` → `AbandonPayment` (job `failed`) → ack."""

    def __init__(
        self,
        send: Callable[[AbandonPayment], Awaitable[object]],
        *,
        retry_delay_s: float = 1.0,
        max_retry_delay_s: float = 30.0,
        healthy: Healthy = _always,
    ) -> None:
        super().__init__(retry_delay_s, max_retry_delay_s, healthy)
        self._send = send

    async def __call__(self, message: AbstractIncomingMessage, ack: Ack) -> None:
        command = decode_dead_letter(message)
        if command is None:
            _log.error("dead_letter_unreadable", message_id=message.message_id)
            await ack(message)
            return
        try:
            await self._send(command)
        except Exception:
            await self._retry_later(message, payment_id=command.payment_id)
            return
        _log.error(
            "payment_abandoned",
            payment_id=command.payment_id,
            job_id=command.job_id,
            reason=command.reason,
        )
        await ack(message)
