"""Poison messages end in the dead-letter queue, and the worker gives their payment up."""

from __future__ import annotations

import asyncio
import json
import time

from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_deliveries import DeadLetters, PaymentDeliveries
from gateway.adapters.rabbitmq_topology import MAKE_PAYMENT, Topology
from gateway.domain.commands import AbandonPayment, MakePayment
from tests.fixtures.rabbitmq import drain, eventually, outbox_rows, publish_raw


async def test_a_message_that_keeps_failing_is_dead_lettered_after_the_delivery_limit(
    broker: RabbitBroker, topology: Topology
) -> None:
    calls: list[MakePayment] = []

    async def always_fails(command: MakePayment) -> None:
        calls.append(command)
        raise RuntimeError("bug")

    deliveries = PaymentDeliveries(always_fails, retry_delay_s=0.01)
    consumer = await broker.consume_payments(deliveries, prefetch=10)
    await broker.publisher().publish(outbox_rows(1))

    await eventually(lambda: len(calls) == topology.delivery_limit + 1)
    dead = await drain(topology.dead_letter_queue, 1)
    await consumer.stop(grace_s=1)

    assert len(calls) == topology.delivery_limit + 1  # and no more: it stopped looping
    assert dead[0].message_id == "obx_00000"
    assert (dead[0].headers or {})["x-first-death-reason"] == "delivery_limit"


async def test_an_unreadable_message_goes_to_the_dead_letter_queue_at_once(
    broker: RabbitBroker, topology: Topology
) -> None:
    calls: list[MakePayment] = []

    async def handler(command: MakePayment) -> None:
        calls.append(command)

    consumer = await broker.consume_payments(PaymentDeliveries(handler), prefetch=10)
    await publish_raw(topology, b"not json", "obx_bad", MAKE_PAYMENT)
    await publish_raw(topology, json.dumps({"payment_id": 1}).encode(), "obx_shape", MAKE_PAYMENT)

    dead = await drain(topology.dead_letter_queue, 2)
    await consumer.stop(grace_s=1)

    assert sorted(m.message_id or "" for m in dead) == ["obx_bad", "obx_shape"]
    assert {(m.headers or {})["x-first-death-reason"] for m in dead} == {"rejected"}
    assert calls == []


async def test_the_dead_letter_consumer_abandons_the_payment_and_empties_the_queue(
    broker: RabbitBroker, topology: Topology
) -> None:
    abandoned: list[AbandonPayment] = []

    async def abandon(command: AbandonPayment) -> None:
        abandoned.append(command)

    async def always_fails(command: MakePayment) -> None:
        raise RuntimeError("bug")

    deliveries = PaymentDeliveries(always_fails, retry_delay_s=0.01)
    consumer = await broker.consume_payments(deliveries, prefetch=10)
    dead_letters = await broker.consume_dead_letters(DeadLetters(abandon))
    await broker.publisher().publish(outbox_rows(2))

    await eventually(lambda: len(abandoned) == 2)
    await consumer.stop(grace_s=1)
    await dead_letters.stop(grace_s=1)

    assert sorted(abandoned, key=lambda c: c.payment_id) == [
        AbandonPayment("pay_0", "job_0", "mer_1", "delivery_limit"),
        AbandonPayment("pay_1", "job_1", "mer_1", "delivery_limit"),
    ]
    assert await depth_reaches(broker, 0)


async def test_dead_letter_depth_counts_waiting_messages(
    broker: RabbitBroker, topology: Topology
) -> None:
    consumer = await broker.consume_payments(PaymentDeliveries(_never_called), prefetch=10)
    for n in range(3):
        await publish_raw(topology, b"{}", f"obx_{n}", MAKE_PAYMENT)

    assert await depth_reaches(broker, 3)
    await consumer.stop(grace_s=1)


async def depth_reaches(broker: RabbitBroker, expected: int, timeout_s: float = 5) -> bool:
    deadline = time.monotonic() + timeout_s
    while await broker.dead_letter_depth() != expected:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _never_called(command: MakePayment) -> None:
    raise AssertionError("an unreadable message reached the handler")
