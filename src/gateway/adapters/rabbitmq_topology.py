"""The broker topology, declared idempotently by every relay and worker at start.

`<prefix>` (durable direct exchange) routes `MakePayment` to the durable quorum queue
`<prefix>.make-payment`. RabbitMQ 3.10 puts no limit on redeliveries, so the queue sets
one (`x-delivery-limit`): a message nacked that often, or rejected, is dead-lettered
(at least once) through `<prefix>.dlx` to `<prefix>.make-payment.dlq` instead of looping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel

MAKE_PAYMENT = "MakePayment"


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
    return exchange
