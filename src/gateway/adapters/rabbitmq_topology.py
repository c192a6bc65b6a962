"""The broker topology, declared idempotently by every relay and worker at start.

`<prefix>` (durable direct exchange) routes `MakePayment` to the durable quorum queue
`<prefix>.make-payment`. RabbitMQ 3.10 puts no limit on redeliveries, so the queue sets
one (`x-delivery-limit`): a message nacked that often, or rejected, is dead-lettered
(at least once) through `<prefix>.dlx` to `<prefix>.make-payment.dlq` instead of looping.

`DeliverWebhook` goes to the quorum queue `<prefix>.webhooks`. A retry waits in
`<prefix>.webhooks.retry.<attempt>` (declared when first used) until its per-message
expiration dead-letters it back through `<prefix>` into `<prefix>.webhooks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel

MAKE_PAYMENT = "MakePayment"
DELIVER_WEBHOOK = "DeliverWebhook"
WEBHOOK_DELIVERY_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Topology:
    prefix: str
    delivery_limit: int = 5

    @property
    def exchange(self) -> str:
        return self.prefix

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def queue(self) -> str:
        return f"{self.prefix}.make-payment"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.make-payment.dlq"

    def queue_arguments(self) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": MAKE_PAYMENT,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",  # required by at-least-once dead-lettering
        }

    def dead_letter_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": "quorum"}

    @property
    def webhook_queue(self) -> str:
        return f"{self.prefix}.webhooks"

    def webhook_retry_queue(self, attempt: int) -> str:
        """Where the message for attempt number `attempt` waits out its delay."""
        return f"{self.prefix}.webhooks.retry.{attempt}"

    def queues(self, webhook_attempts: int = 20) -> tuple[str, ...]:
        """Every queue this topology declares, the retry queue of each webhook attempt up to
        `webhook_attempts` included: what an operator (or a test) deletes to remove it."""
        retries = (self.webhook_retry_queue(n) for n in range(1, webhook_attempts + 1))
        return (self.queue, self.dead_letter_queue, self.webhook_queue, *retries)

    @property
    def exchanges(self) -> tuple[str, ...]:
        return (self.exchange, self.dead_letter_exchange)

    def webhook_queue_arguments(self) -> dict[str, Any]:
        # Past the limit a message is dropped: the webhooks sweep finds its delivery due.
        return {"x-queue-type": "quorum", "x-delivery-limit": WEBHOOK_DELIVERY_LIMIT}

    def webhook_retry_arguments(self) -> dict[str, Any]:
        """Messages expire (per-message expiration: the delay) back into the webhooks queue."""
        return {
            "x-dead-letter-exchange": self.exchange,
            "x-dead-letter-routing-key": DELIVER_WEBHOOK,
        }


async def declare(channel: AbstractRobustChannel, topology: Topology) -> AbstractExchange:
    """Declares (or finds, unchanged) every exchange, queue and binding; returns the
    exchange messages are published to. A robust channel declares them again after a
    reconnection."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dlq = await channel.declare_queue(
        topology.dead_letter_queue, durable=True, arguments=topology.dead_letter_arguments()
    )
    await dlq.bind(dlx, MAKE_PAYMENT)
    queue = await channel.declare_queue(
        topology.queue, durable=True, arguments=topology.queue_arguments()
    )
    await queue.bind(exchange, MAKE_PAYMENT)
    webhooks = await channel.declare_queue(
        topology.webhook_queue, durable=True, arguments=topology.webhook_queue_arguments()
    )
    await webhooks.bind(exchange, DELIVER_WEBHOOK)
    return exchange
