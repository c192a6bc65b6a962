"""h. Poison messages published straight to the payment queue: one the worker cannot read
(dead-lettered at once) and one whose handling fails every time (dead-lettered after the
queue's delivery limit). Everything else keeps flowing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aio_pika

from gateway.adapters.rabbitmq_topology import MAKE_PAYMENT, Topology
from tests.faults.load import burst, orders
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import PrivateRabbit, Stack

PAYMENTS = 200
# PostgreSQL refuses a NUL in text: every attempt to handle this one raises.
CRASHING = {"payment_id": "pay_\u0000poison", "job_id": "job_poison", "merchant_id": "mer_x"}


async def publish_to_queue(broker_url: str, queue: str, body: bytes, message_id: str) -> None:
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel()
        message = aio_pika.Message(body, message_id=message_id, type=MAKE_PAYMENT)
        await channel.default_exchange.publish(message, routing_key=queue)


async def until_dead_lettered(rabbit: PrivateRabbit, topology: Topology, timeout_s: float) -> float:
    """Seconds until the main queue is empty and the dead-letter queue holds the poison."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        depths = rabbit.queue_depths()
        if depths.get(topology.queue) == 0 and depths.get(topology.dead_letter_queue, 0) >= 1:
            return time.monotonic() - started
        await asyncio.sleep(1)
    raise AssertionError(f"not dead-lettered within {timeout_s}s: {rabbit.queue_depths()}")


async def test_poison_messages_are_dead_lettered_and_payments_keep_flowing(
    stack: Stack, private_rabbitmq: PrivateRabbit, record: Callable[..., Row]
) -> None:
    stack.up()
    topology = Topology(stack.prefix)
    row = record(
        "h",
        "Poison messages",
        load=f"{PAYMENTS} payments at once, behind 2 poison messages",
        faults="an unreadable message and one whose handling always raises, published"
        f" straight to the queue (delivery limit {topology.delivery_limit})",
    )
    broker = stack.broker_url
    await publish_to_queue(broker, topology.queue, b"\xff not json", "poison-unreadable")
    await publish_to_queue(broker, topology.queue, json.dumps(CRASHING).encode(), "poison-crash")
    async with stack.client() as client:
        answers = await burst(client, PAYMENTS, orders("h"))
    accepted = [a.payment_id for a in answers.accepted]

    verdict = await conclude(stack, row, accepted, 60, answers)
    dead_lettered_after = await until_dead_lettered(private_rabbitmq, topology, timeout_s=60)

    worker_log = "\n".join(p.output() for p in stack.processes.started if p.name == "worker")
    retries = worker_log.count('"message_retry"')
    row.measure(
        good_payments_settled_s=row.measurements["settle_s"],
        poison_dead_lettered_after_s=round(dead_lettered_after, 1),
        poison_retries=retries,
    )
    assert len(accepted) == PAYMENTS, answers.statuses
    assert '"message_unreadable"' in worker_log
    assert retries >= topology.delivery_limit
    assert verdict.ok, verdict
    assert row.card_data_found == 0
