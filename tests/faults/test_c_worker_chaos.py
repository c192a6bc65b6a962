"""c. The worker is killed at random every few seconds under a steady load."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from tests.faults.load import Answers, orders, steady
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack, kill

RATE_PER_S = 15
SECONDS = 60


async def kill_workers_until(stack: Stack, done: asyncio.Event) -> int:
    """Every 2–5 s: SIGKILL the worker and start a new one at once. How many kills."""
    kills = 0
    while not done.is_set():
        await asyncio.sleep(random.uniform(2, 5))
        if done.is_set():
            break
        worker = next(p for p in reversed(stack.processes.started) if p.name == "worker")
        kill(worker)
        stack.start_worker()
        kills += 1
    return kills


async def test_a_worker_killed_at_random_under_load_loses_nothing(
    stack: Stack, record: Callable[..., Row]
) -> None:
    stack.up(bank_latency_ms=300)
    row = record(
        "c",
        "Worker killed at random",
        load=f"{RATE_PER_S} payments/s for {SECONDS} s; bank latency 300 ms; 1 worker",
        faults="SIGKILL of the worker every 2–5 s (random), a new one started at once",
    )
    answers, done = Answers(), asyncio.Event()
    chaos = asyncio.create_task(kill_workers_until(stack, done))
    async with stack.client() as client:
        await steady(client, RATE_PER_S, SECONDS, orders("c"), answers)
    done.set()
    kills = await chaos
    row.measure(worker_kills=kills)

    accepted = [a.payment_id for a in answers.accepted]
    verdict = await conclude(stack, row, accepted, 60, answers)

    assert len(accepted) == RATE_PER_S * SECONDS, answers.statuses
    assert kills >= 4
    assert verdict.ok, verdict
    assert row.card_data_found == 0
