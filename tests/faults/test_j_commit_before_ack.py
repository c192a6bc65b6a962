"""j. The worker is killed (SIGKILL) after it committed every payment of a batch and
before any of its acks reached RabbitMQ: the broker delivers the whole batch again, and
the next worker must settle it from the database without calling the bank again.

Deterministic, without a hook in the gateway: the worker talks to the broker through a
proxy of the test's own (`HoldingProxy`). Once the worker is consuming, the proxy holds
back everything the worker sends (its acks) while deliveries still reach it. The test
waits until PostgreSQL shows every job final and the private node shows every message
still unacked, then kills the worker and cuts its connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from gateway.adapters.rabbitmq_topology import Topology
from tests.faults.load import burst, orders
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import HoldingProxy, PrivateRabbit, Stack, connected, kill, wait_for_log

PAYMENTS = 100


@pytest.fixture
def proxy(private_rabbitmq: PrivateRabbit) -> Iterator[HoldingProxy]:
    held = HoldingProxy(private_rabbitmq.port)
    held.start()
    yield held
    held.stop()


async def final_jobs(stack: Stack) -> int:
    async with connected(stack.database) as db:
        count: int = await db.fetchval("SELECT count(*) FROM jobs WHERE status <> 'created'")
    return count


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.2)


async def test_a_worker_killed_between_commit_and_ack_is_redelivered_and_charges_nothing_again(
    stack: Stack,
    private_rabbitmq: PrivateRabbit,
    proxy: HoldingProxy,
    record: Callable[..., Row],
) -> None:
    stack.up(GATEWAY_BROKER_URL=proxy.url)
    queue = Topology(stack.prefix).queue
    row = record(
        "j",
        "Worker killed after commit, before ack",
        load=f"{PAYMENTS} payments at once; 1 worker, connected to the broker through a proxy",
        faults="the worker's acks held back by the proxy; SIGKILL of the worker once every"
        " job is final in PostgreSQL and every message still unacked in RabbitMQ; a new"
        " worker started",
    )
    worker = stack.last("worker")
    proxy.hold()
    async with stack.client() as client:
        answers = await burst(client, PAYMENTS, orders("j"))

    async def committed_not_acked() -> bool:
        final = await final_jobs(stack)
        return final == PAYMENTS and private_rabbitmq.ready_and_unacked(queue) == (0, PAYMENTS)

    await until(committed_not_acked, "every job final and every message unacked")
    kill(worker)
    proxy.cut()

    async def returned() -> bool:
        return private_rabbitmq.ready_and_unacked(queue) == (PAYMENTS, 0)

    await until(returned, "the batch back in the queue")
    ledger_before = await stack.ledger()
    wait_for_log(stack.start_worker(), "worker_started")

    async def drained() -> bool:
        return private_rabbitmq.ready_and_unacked(queue) == (0, 0)

    await until(drained, "the redelivered batch acked")
    row.measure(
        at_kill={"jobs_final": PAYMENTS, "messages_unacked": PAYMENTS},
        redelivered=PAYMENTS,
    )
    accepted = [a.payment_id for a in answers.accepted]
    verdict = await conclude(stack, row, accepted, 30, answers)
    ledger = await stack.ledger()

    assert len(accepted) == PAYMENTS, answers.statuses
    assert ledger == ledger_before  # the redelivery never reached the bank
    assert {entry["calls"] for entry in ledger.values()} == {1}
    assert verdict.ok, verdict
    assert row.card_data_found == 0
