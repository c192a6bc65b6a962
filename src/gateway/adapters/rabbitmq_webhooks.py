"""Webhook deliveries over RabbitMQ: consuming `DeliverWebhook`, and delayed retries.

A retry is a persistent message in `<prefix>.webhooks.retry.<n>` whose per-message
expiration is the delay; when it expires the broker dead-letters it back into
`<prefix>.webhooks`. Nothing sleeps: the wait is the broker's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel

from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_consumer import Ack
from gateway.adapters.rabbitmq_messages import CONTENT_TYPE
from gateway.adapters.rabbitmq_topology import DELIVER_WEBHOOK
from gateway.domain.commands import DeliverWebhook

_log = structlog.get_logger("gateway.webhooks")


def encode_deliver_webhook(command: DeliverWebhook) -> bytes:
    payload = {"delivery_id": command.delivery_id, "attempt": str(command.attempt)}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def decode_deliver_webhook(message: AbstractIncomingMessage) -> DeliverWebhook | None:
    """The command, or None when the message is not a well-formed `DeliverWebhook`."""
    if message.type != DELIVER_WEBHOOK:
        return None
    try:
        data = json.loads(message.body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    delivery_id, attempt = data.get("delivery_id"), data.get("attempt", "1")
    if not isinstance(delivery_id, str) or not delivery_id or not isinstance(attempt, str):
        return None
    if not (attempt.isascii() and attempt.isdigit() and 0 < len(attempt) <= 4):
        return None
    return DeliverWebhook(delivery_id, int(attempt))


class WebhookMessages:
    """`DeliverWebhook` deliveries → the handler → ack. The handler records the attempt
    and schedules the next before it returns, so the ack never runs ahead of it."""

    def __init__(
        self, send: Callable[[DeliverWebhook], Awaitable[object]], *, retry_delay_s: float = 1.0
    ) -> None:
        self._send = send
        self._retry_delay_s = retry_delay_s

    async def __call__(self, message: AbstractIncomingMessage, ack: Ack) -> None:
        command = decode_deliver_webhook(message)
        if command is None:
            _log.error("message_unreadable", message_id=message.message_id)
            await message.reject(requeue=False)
            return
        try:
            await self._send(command)
        except Exception:
            _log.warning("webhook_message_retry", delivery_id=command.delivery_id)
            await asyncio.sleep(self._retry_delay_s)
            await message.nack(requeue=True)
            return
        await ack(message)


class RabbitRetries:
    """Schedules attempt `n` by parking its message in `<prefix>.webhooks.retry.<n-1>`."""

    def __init__(self, broker: RabbitBroker) -> None:
        self._broker = broker
        self._channel: AbstractRobustChannel | None = None
        self._declared: set[str] = set()
        self._opening = asyncio.Lock()

    async def schedule(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        channel = await self._open()
        topology = self._broker.topology
        queue = topology.webhook_retry_queue(attempt - 1)
        if queue not in self._declared:
            arguments = topology.webhook_retry_arguments()
            await channel.declare_queue(queue, durable=True, arguments=arguments)
            self._declared.add(queue)
        message = aio_pika.Message(
            body=encode_deliver_webhook(DeliverWebhook(delivery_id, attempt)),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=f"{delivery_id}:{attempt}",
            type=DELIVER_WEBHOOK,
            expiration=max(0.0, delay_s),
        )
        await channel.default_exchange.publish(message, routing_key=queue)

    async def _open(self) -> AbstractRobustChannel:
        async with self._opening:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._broker.confirming_channel()
                self._declared.clear()
            return self._channel


class NoRetries:
    """Embedded mode: the dispatcher's sweep makes each retry when it is due."""

    async def schedule(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        return None
