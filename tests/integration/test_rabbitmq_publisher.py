"""The publisher against the real broker: confirmed, persistent, ids only."""

from __future__ import annotations

import json
import time

import aio_pika
import pytest

from gateway.adapters.rabbitmq import PublishFailed, RabbitBroker
from gateway.adapters.rabbitmq_topology import MAKE_PAYMENT, Topology
from gateway.application.ports import OutboxMessage
from tests.fixtures.rabbitmq import TcpProxy, drain, outbox_rows


async def test_a_batch_of_500_is_confirmed_and_arrives_with_message_ids_and_no_card_data(
    broker: RabbitBroker, topology: Topology
) -> None:
    rows = outbox_rows(500)

    await broker.publisher().publish(rows)

    received = await drain(topology.queue, 500)
    assert sorted(m.message_id or "" for m in received) == [row.id for row in rows]
    first = min(received, key=lambda m: m.message_id or "")
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.content_type == "application/json"
    assert first.type == MAKE_PAYMENT
    assert json.loads(first.body) == {
        "payment_id": "pay_0",
        "job_id": "job_0",
        "merchant_id": "mer_1",
    }
    assert all(b"4242" not in m.body and b"card" not in m.body for m in received)


async def test_a_batch_is_pipelined_not_one_round_trip_per_message(
    topology: Topology, tcp_proxy: TcpProxy
) -> None:
    tcp_proxy.latency_s = 0.02  # 40 ms round trip: 300 sequential confirms would take 12 s
    broker = RabbitBroker(tcp_proxy.url, topology)
    await broker.connect(retry=False)
    try:
        started = time.perf_counter()
        await broker.publisher().publish(outbox_rows(300))
        elapsed = time.perf_counter() - started
    finally:
        await broker.close()
    assert elapsed < 2
    assert len(await drain(topology.queue, 300)) == 300


async def test_a_message_the_broker_cannot_route_fails_the_batch(broker: RabbitBroker) -> None:
    unroutable = OutboxMessage(id="obx_x", kind="NoSuchCommand", payload={"payment_id": "p"})

    with pytest.raises(PublishFailed):
        await broker.publisher().publish([*outbox_rows(3), unroutable])


async def test_publishing_an_empty_batch_does_nothing(broker: RabbitBroker) -> None:
    await broker.publisher().publish([])
