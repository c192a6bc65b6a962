"""e. RabbitMQ stops for 20 s while payments keep arriving (the suite's private node)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.faults.load import Answers, orders, steady
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import PrivateRabbit, Stack, cpu_seconds

RATE_PER_S = 10
SECONDS = 27
OUTAGE_AT_S, OUTAGE_S = 3, 20


async def test_a_broker_outage_delays_payments_but_loses_none(
    stack: Stack, private_rabbitmq: PrivateRabbit, record: Callable[..., Row]
) -> None:
    stack.up()
    row = record(
        "e",
        "Broker outage",
        load=f"{RATE_PER_S} payments/s for {SECONDS} s",
        faults=f"RabbitMQ stop_app for {OUTAGE_S} s, then start_app",
    )
    relay = next(p for p in stack.processes.started if p.name == "relay")
    answers = Answers()
    async with stack.client() as client:
        load = asyncio.create_task(steady(client, RATE_PER_S, SECONDS, orders("e"), answers))
        await asyncio.sleep(OUTAGE_AT_S)
        private_rabbitmq.stop_app()
        lines, cpu, down_at = len(relay.output().splitlines()), cpu_seconds(relay), time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        outage_lines = relay.output().splitlines()[lines:]
        outage_cpu = cpu_seconds(relay) - cpu
        private_rabbitmq.start_app()
        up_at = time.monotonic()
        await load
    accepted_during = sum(down_at <= a.at <= up_at for a in answers.accepted)
    backoffs = [line for line in outage_lines if "relay_backoff" in line]
    row.measure(
        accepted_during_outage=accepted_during,
        relay_log_lines_during_outage=len(outage_lines),
        relay_backoff_lines=len(backoffs),
        relay_cpu_s_during_outage=round(outage_cpu, 2),
    )

    accepted = [a.payment_id for a in answers.accepted]
    verdict = await conclude(stack, row, accepted, 90, answers)

    assert dict(answers.statuses) == {202: RATE_PER_S * SECONDS}
    assert accepted_during >= RATE_PER_S * OUTAGE_S * 0.9
    assert 1 <= len(backoffs) <= 30, outage_lines[-20:]  # it backs off, not a hot loop
    assert len(outage_lines) <= 60, outage_lines[-20:]
    assert outage_cpu < 0.25 * OUTAGE_S
    assert verdict.ok, verdict
    assert row.card_data_found == 0
