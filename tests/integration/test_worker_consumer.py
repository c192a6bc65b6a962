"""The worker's consumer against the real broker: concurrency, acks, graceful stop."""

from __future__ import annotations

import asyncio
import time

from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_deliveries import PaymentDeliveries
from gateway.adapters.rabbitmq_topology import Topology
from gateway.domain.commands import MakePayment
from tests.fixtures.rabbitmq import AMQP_URL, drain, eventually, outbox_rows


class SlowHandler:
    """Stands in for `mediator.send`: takes `seconds` per command, records what it finished."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.started: list[str] = []
        self.finished: list[str] = []
        self.running = 0
        self.most_at_once = 0

    async def __call__(self, command: MakePayment) -> None:
        self.started.append(command.payment_id)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        self.finished.append(command.payment_id)


async def test_fifty_slow_payments_are_processed_concurrently(
    broker: RabbitBroker, topology: Topology
) -> None:
    handler = SlowHandler(seconds=0.5)
    consumer = await broker.consume_payments(PaymentDeliveries(handler), prefetch=64)
    started = time.perf_counter()

    await broker.publisher().publish(outbox_rows(50))
    await eventually(lambda: len(handler.finished) == 50, timeout_s=10)

    assert time.perf_counter() - started < 2.5
    assert handler.most_at_once > 25
    await consumer.stop(grace_s=1)
    assert await drain(topology.queue, 1, timeout_s=0.3) == []  # every one was acked


async def test_prefetch_bounds_how_many_run_at_once(broker: RabbitBroker) -> None:
    handler = SlowHandler(seconds=0.2)
    consumer = await broker.consume_payments(PaymentDeliveries(handler), prefetch=5)

    await broker.publisher().publish(outbox_rows(20))
    await eventually(lambda: len(handler.finished) == 20)

    assert handler.most_at_once == 5
    await consumer.stop(grace_s=1)


async def test_a_message_is_acked_only_after_its_handler_returned(topology: Topology) -> None:
    # The first worker dies (its connection closes) while the handler is still running:
    # the message was not acked, so the broker redelivers it to the next worker.
    first = RabbitBroker(AMQP_URL, topology)
    await first.connect(retry=False)
    stuck = SlowHandler(seconds=60)
    killed = await first.consume_payments(PaymentDeliveries(stuck), prefetch=10)
    await first.publisher().publish(outbox_rows(3))
    await eventually(lambda: len(stuck.started) == 3)
    await first.close()
    await killed.stop(grace_s=0)

    second = RabbitBroker(AMQP_URL, topology)
    await second.connect(retry=False)
    handler = SlowHandler()
    consumer = await second.consume_payments(PaymentDeliveries(handler), prefetch=10)
    await eventually(lambda: len(handler.finished) == 3)

    assert sorted(handler.finished) == ["pay_0", "pay_1", "pay_2"]
    assert stuck.finished == []
    await consumer.stop(grace_s=1)
    await second.close()


async def test_graceful_stop_lets_in_flight_messages_finish_and_acks_them(
    broker: RabbitBroker, topology: Topology
) -> None:
    handler = SlowHandler(seconds=0.3)
    consumer = await broker.consume_payments(PaymentDeliveries(handler), prefetch=10)
    await broker.publisher().publish(outbox_rows(5))
    await eventually(lambda: len(handler.started) == 5)

    await consumer.stop(grace_s=5)

    assert len(handler.finished) == 5
    assert await drain(topology.queue, 1, timeout_s=0.3) == []


async def test_stop_after_the_grace_period_returns_unfinished_messages_to_the_queue(
    broker: RabbitBroker, topology: Topology
) -> None:
    handler = SlowHandler(seconds=60)
    consumer = await broker.consume_payments(PaymentDeliveries(handler), prefetch=10)
    await broker.publisher().publish(outbox_rows(4))
    await eventually(lambda: len(handler.started) == 4)

    await consumer.stop(grace_s=0.1)

    assert handler.finished == []
    returned = await drain(topology.queue, 4)
    assert sorted(m.message_id or "" for m in returned) == [r.id for r in outbox_rows(4)]
    assert all(m.redelivered for m in returned)


async def test_stop_takes_no_new_messages(broker: RabbitBroker, topology: Topology) -> None:
    handler = SlowHandler()
    consumer = await broker.consume_payments(PaymentDeliveries(handler), prefetch=10)
    await consumer.stop(grace_s=1)

    await broker.publisher().publish(outbox_rows(2))

    assert len(await drain(topology.queue, 2)) == 2
    assert handler.started == []


async def test_a_handler_that_raises_is_retried_and_then_acked(broker: RabbitBroker) -> None:
    calls: list[str] = []

    async def flaky(command: MakePayment) -> None:
        calls.append(command.payment_id)
        if len(calls) < 3:
            raise ConnectionError("database unavailable")

    deliveries = PaymentDeliveries(flaky, retry_delay_s=0.01)
    consumer = await broker.consume_payments(deliveries, prefetch=10)
    await broker.publisher().publish(outbox_rows(1))

    await eventually(lambda: len(calls) == 3)
    await consumer.stop(grace_s=1)
    assert await broker.dead_letter_depth() == 0
