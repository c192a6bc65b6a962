"""b. The worker is killed (SIGKILL) in the middle of a batch, then started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.faults.load import burst, orders
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack, connected, kill, wait_for_log

PAYMENTS = 300


async def final_count(stack: Stack) -> int:
    async with connected(stack.database) as db:
        count: int = await db.fetchval("SELECT count(*) FROM jobs WHERE status <> 'created'")
    return count


async def wait_mid_batch(stack: Stack, timeout_s: float = 30) -> tuple[int, int]:
    """Waits until the bank has seen a good part of the batch and much is still open."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen, final = len(await stack.ledger()), await final_count(stack)
        if seen >= PAYMENTS // 3 and final < seen:
            return seen, final
        await asyncio.sleep(0.05)
    raise AssertionError("the batch never got under way")


async def test_a_worker_killed_mid_batch_loses_nothing_and_charges_nothing_twice(
    stack: Stack, record: Callable[..., Row]
) -> None:
    stack.up(bank_latency_ms=1000)
    row = record(
        "b",
        "Worker killed mid-batch",
        load=f"{PAYMENTS} payments at once; bank latency 1 s; 1 worker",
        faults="SIGKILL of the worker with a batch in flight at the bank; restarted after 1 s",
    )
    worker = stack.processes.started[-1]
    async with stack.client() as client:
        answers = await burst(client, PAYMENTS, orders("b"))
    seen, final = await wait_mid_batch(stack)
    kill(worker)
    row.measure(at_kill={"bank_has_seen": seen, "final": final})
    await asyncio.sleep(1)
    wait_for_log(stack.start_worker(), "worker_started")

    accepted = [a.payment_id for a in answers.accepted]
    verdict = await conclude(stack, row, accepted, 60, answers)

    assert len(accepted) == PAYMENTS, answers.statuses
    assert final < PAYMENTS  # the kill really hit a batch in flight
    assert verdict.ok, verdict
    assert row.card_data_found == 0
