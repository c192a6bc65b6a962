"""The topology against the real broker: quorum queue, delivery limit, dead-lettering."""

from __future__ import annotations

import aio_pika
import aiormq
import pytest

from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_topology import Topology
from tests.fixtures.rabbitmq import AMQP_URL


async def _declare_queue(name: str, arguments: dict[str, object]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments=arguments)


async def test_queue_is_a_durable_quorum_queue_with_the_delivery_limit(
    broker: RabbitBroker, topology: Topology
) -> None:
    # Declaring with the same arguments succeeds; the broker refuses any other set
    # (PRECONDITION_FAILED), which shows what it holds without the management API.
    await _declare_queue(topology.queue, topology.queue_arguments())
    other_limit = {**topology.queue_arguments(), "x-delivery-limit": topology.delivery_limit + 1}
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await _declare_queue(topology.queue, other_limit)
    classic = {**topology.queue_arguments(), "x-queue-type": "classic"}
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await _declare_queue(topology.queue, classic)
    no_dead_letters = {"x-queue-type": "quorum", "x-delivery-limit": topology.delivery_limit}
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await _declare_queue(topology.queue, no_dead_letters)


def test_queue_arguments_name_the_dead_letter_exchange_and_a_delivery_limit() -> None:
    arguments = Topology("shop", delivery_limit=7).queue_arguments()
    assert arguments["x-queue-type"] == "quorum"
    assert arguments["x-delivery-limit"] == 7
    assert arguments["x-dead-letter-exchange"] == "shop.dlx"
    assert Topology("shop").dead_letter_queue == "shop.make-payment.dlq"


async def test_declaring_again_at_start_is_idempotent(
    broker: RabbitBroker, topology: Topology
) -> None:
    again = RabbitBroker(AMQP_URL, topology)
    await again.connect(retry=False)
    try:
        assert again.is_connected
        assert await again.dead_letter_depth() == 0
    finally:
        await again.close()
