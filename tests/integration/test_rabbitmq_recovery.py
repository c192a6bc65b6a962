"""The connection recovers by itself: cut from the outside through a TCP proxy."""

from __future__ import annotations

import asyncio

import pytest

from gateway.adapters.rabbitmq import RabbitBroker, RabbitPublisher
from gateway.adapters.rabbitmq_deliveries import PaymentDeliveries
from gateway.adapters.rabbitmq_topology import Topology
from gateway.application.ports import OutboxMessage
from gateway.domain.commands import MakePayment
from tests.fixtures.rabbitmq import TcpProxy, eventually, outbox_rows


async def publish_until_confirmed(
    publisher: RabbitPublisher, rows: list[OutboxMessage], timeout_s: float = 15
) -> int:
    """What the relay does: try, back off, try again. Returns the failed attempts."""
    failures = 0
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                await publisher.publish(rows)
                return failures
            except Exception:
                failures += 1
                await asyncio.sleep(0.1)


async def test_publisher_and_consumer_recover_after_the_connection_is_cut(
    topology: Topology, tcp_proxy: TcpProxy
) -> None:
    broker = RabbitBroker(tcp_proxy.url, topology, reconnect_interval_s=0.2)
    await broker.connect(retry=False)
    seen: list[str] = []

    async def handler(command: MakePayment) -> None:
        seen.append(command.payment_id)

    consumer = await broker.consume_payments(PaymentDeliveries(handler), prefetch=10)
    publisher = broker.publisher()
    await publisher.publish(outbox_rows(1))
    await eventually(lambda: seen == ["pay_0"])

    tcp_proxy.cut()
    await eventually(lambda: not broker.is_connected, timeout_s=5)
    await publish_until_confirmed(publisher, outbox_rows(1, start=1))
    await eventually(lambda: "pay_1" in seen)

    assert broker.is_connected
    await consumer.stop(grace_s=1)
    await broker.close()


async def test_a_publish_while_the_broker_is_unreachable_fails_instead_of_hanging(
    topology: Topology, tcp_proxy: TcpProxy
) -> None:
    broker = RabbitBroker(tcp_proxy.url, topology, reconnect_interval_s=0.2)
    await broker.connect(retry=False)
    await tcp_proxy.stop()
    tcp_proxy.cut()
    await eventually(lambda: not broker.is_connected, timeout_s=5)

    async with asyncio.timeout(5):
        with pytest.raises(Exception):  # noqa: B017 - any failure leaves the rows unsent
            await broker.publisher().publish(outbox_rows(1))

    await tcp_proxy.start()
    assert await publish_until_confirmed(broker.publisher(), outbox_rows(1)) >= 0
    await broker.close()


async def test_connect_waits_for_a_broker_that_is_down_at_start(
    topology: Topology, tcp_proxy: TcpProxy
) -> None:
    await tcp_proxy.stop()
    broker = RabbitBroker(tcp_proxy.url, topology)
    connecting = asyncio.create_task(broker.connect(max_delay_s=0.2))
    await asyncio.sleep(0.6)
    assert not connecting.done()

    await tcp_proxy.start()
    await asyncio.wait_for(connecting, timeout=5)

    assert broker.is_connected
    await broker.close()
