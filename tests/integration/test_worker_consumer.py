"""The worker's consumer against the real broker: concurrency, acks, graceful stop."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_consumer import Ack
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


class AcksSent:
    """Handles deliveries as told, and records every `basic.ack` the consumer sends on
    the real channel: (delivery tag, multiple)."""

    def __init__(self, hold: Callable[[str], Awaitable[None]]) -> None:
        self._hold = hold
        self.sent: list[tuple[int, bool]] = []
        self.handled: list[str] = []

    async def __call__(self, message: AbstractIncomingMessage, ack: Ack) -> None:
        channel: Any = message.channel
        if not hasattr(channel, "real_basic_ack"):
            channel.real_basic_ack = channel.basic_ack
            channel.basic_ack = self._recording(channel.real_basic_ack)
        await self._hold(message.message_id or "")
        self.handled.append(message.message_id or "")
        await ack(message)

    def _recording(
        self, basic_ack: Callable[..., Awaitable[None]]
    ) -> Callable[..., Awaitable[None]]:
        async def recorded(delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
            self.sent.append((delivery_tag, multiple))
            await basic_ack(delivery_tag, multiple=multiple, wait=wait)

        return recorded


async def test_acks_of_deliveries_settled_together_go_out_as_one(
    broker: RabbitBroker, topology: Topology
) -> None:
    everyone_in = asyncio.Event()
    started: list[str] = []

    async def together(message_id: str) -> None:
        started.append(message_id)
        if len(started) == 20:
            everyone_in.set()
        await everyone_in.wait()

    handler = AcksSent(together)
    consumer = await broker.consume_payments(handler, prefetch=20)
    await broker.publisher().publish(outbox_rows(20))
    await eventually(lambda: len(handler.handled) == 20 and bool(handler.sent))

    assert handler.sent == [(20, True)]
    await consumer.stop(grace_s=1)
    assert await drain(topology.queue, 1, timeout_s=0.3) == []  # all 20 were acked


async def test_an_ack_never_covers_a_delivery_still_being_handled(
    broker: RabbitBroker, topology: Topology
) -> None:
    release = asyncio.Event()
    first = outbox_rows(1)[0].id

    async def first_waits(message_id: str) -> None:
        if message_id == first:
            await release.wait()

    handler = AcksSent(first_waits)
    consumer = await broker.consume_payments(handler, prefetch=10)
    await broker.publisher().publish(outbox_rows(10))
    await eventually(lambda: len(handler.sent) == 9)  # the others, one by one

    assert sorted(handler.sent) == [(tag, False) for tag in range(2, 11)]
    release.set()
    await eventually(lambda: len(handler.sent) == 10)
    assert handler.sent[-1] == (1, True)  # covers only tag 1: 2 to 10 went before
    await consumer.stop(grace_s=1)
    assert await drain(topology.queue, 1, timeout_s=0.3) == []


async def test_a_delivery_never_acked_returns_while_the_later_ones_stay_acked(
    broker: RabbitBroker, topology: Topology
) -> None:
    first = outbox_rows(1)[0].id

    async def first_hangs(message_id: str) -> None:
        if message_id == first:
            await asyncio.sleep(60)

    handler = AcksSent(first_hangs)
    consumer = await broker.consume_payments(handler, prefetch=10)
    await broker.publisher().publish(outbox_rows(10))
    await eventually(lambda: len(handler.sent) == 9)

    await consumer.stop(grace_s=0.1)

    returned = await drain(topology.queue, 10, timeout_s=1)
    assert [m.message_id for m in returned] == [first]


async def test_under_load_every_delivery_is_acked_once_and_the_channel_stays_open(
    broker: RabbitBroker, topology: Topology
) -> None:
    # Hundreds in flight finishing in random order: the acks, together and alone, must
    # reach the broker in an order it accepts (an ack for a tag already covered closes
    # the channel, and every unacked delivery would come again).
    rng = random.Random(7)
    redelivered: list[str] = []

    async def now_and_then(message_id: str) -> None:
        await asyncio.sleep(rng.choice([0, 0, 0, 0.001, 0.005, 0.03]))

    handler = AcksSent(now_and_then)
    consumer = await broker.consume_payments(
        _noting_redeliveries(handler, redelivered), prefetch=512
    )
    await broker.publisher().publish(outbox_rows(3000))
    await eventually(lambda: len(handler.handled) >= 3000, timeout_s=60)

    await consumer.stop(grace_s=5)
    assert redelivered == []
    assert sorted(handler.handled) == sorted(r.id for r in outbox_rows(3000))
    assert len(handler.sent) < 3000  # most went out together
    assert await drain(topology.queue, 1, timeout_s=0.3) == []


def _noting_redeliveries(
    handle: AcksSent, redelivered: list[str]
) -> Callable[[AbstractIncomingMessage, Ack], Awaitable[None]]:
    async def noting(message: AbstractIncomingMessage, ack: Ack) -> None:
        if message.redelivered:
            redelivered.append(message.message_id or "")
        await handle(message, ack)

    return noting


async def test_a_handler_that_fails_unexpectedly_gives_its_delivery_back(
    broker: RabbitBroker, topology: Topology
) -> None:
    seen: list[tuple[str, bool]] = []

    async def fails_once(message: AbstractIncomingMessage, ack: Ack) -> None:
        seen.append((message.message_id or "", message.redelivered))
        if not message.redelivered:
            raise RuntimeError("a bug")
        await ack(message)

    consumer = await broker.consume_payments(fails_once, prefetch=10)
    await broker.publisher().publish(outbox_rows(1))
    await eventually(lambda: len(seen) == 2)

    assert seen == [(outbox_rows(1)[0].id, False), (outbox_rows(1)[0].id, True)]
    await consumer.stop(grace_s=1)
    assert await drain(topology.queue, 1, timeout_s=0.3) == []
