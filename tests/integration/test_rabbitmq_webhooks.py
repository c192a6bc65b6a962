"""Webhook messages on the real broker: routing, delayed retries through the delay queues,
and the consumer that hands them to the handler."""

from __future__ import annotations

import json
import time

from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_topology import DELIVER_WEBHOOK, Topology
from gateway.adapters.rabbitmq_webhooks import RabbitRetries, WebhookMessages
from gateway.application.ports import OutboxMessage
from gateway.domain.commands import DeliverWebhook
from tests.fixtures.rabbitmq import drain, eventually, publish_raw


async def test_the_relay_can_route_deliver_webhook_to_the_webhooks_queue(
    broker: RabbitBroker, topology: Topology
) -> None:
    message = OutboxMessage("msg_1", DELIVER_WEBHOOK, {"delivery_id": "whd_1", "attempt": "1"})

    await broker.publisher().publish([message])  # an unroutable kind would raise here

    (received,) = await drain(topology.webhook_queue, 1)
    assert received.type == DELIVER_WEBHOOK
    assert json.loads(received.body) == {"attempt": "1", "delivery_id": "whd_1"}


async def test_a_retry_waits_in_the_broker_then_returns_to_the_webhooks_queue(
    broker: RabbitBroker, topology: Topology
) -> None:
    retries = RabbitRetries(broker)
    started = time.monotonic()

    await retries.schedule("whd_1", 2, 0.5)

    assert await drain(topology.webhook_queue, 1, timeout_s=0.2) == []  # still waiting
    (received,) = await drain(topology.webhook_queue, 1, timeout_s=5)
    assert time.monotonic() - started >= 0.45
    assert received.type == DELIVER_WEBHOOK
    assert json.loads(received.body) == {"attempt": "2", "delivery_id": "whd_1"}
    assert topology.webhook_retry_queue(1) == f"{topology.prefix}.webhooks.retry.1"


async def test_the_consumer_hands_each_message_to_the_handler_and_acks_it(
    broker: RabbitBroker, topology: Topology
) -> None:
    handled: list[DeliverWebhook] = []

    async def send(command: DeliverWebhook) -> None:
        handled.append(command)

    consumer = await broker.consume_webhooks(WebhookMessages(send), prefetch=4)
    try:
        await RabbitRetries(broker).schedule("whd_9", 3, 0.0)
        await publish_raw(topology, b"not json", "bad", DELIVER_WEBHOOK)  # rejected, dropped
        await eventually(lambda: len(handled) == 1)
    finally:
        await consumer.stop(grace_s=2)

    assert handled == [DeliverWebhook("whd_9", 3)]
    assert await drain(topology.webhook_queue, 1, timeout_s=0.3) == []
