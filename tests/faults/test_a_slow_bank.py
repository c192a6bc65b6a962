"""a. A slow bank does not cap throughput: 1,000 payments, the bank at 1 s, one worker."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.faults.load import burst, orders
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack

PAYMENTS = 1000


async def test_a_thousand_payments_on_a_one_second_bank_finish_within_seconds_of_the_last(
    stack: Stack, record: Callable[..., Row]
) -> None:
    stack.up(bank_latency_ms=1000)
    row = record(
        "a",
        "Slow bank, one worker",
        load=f"{PAYMENTS:,} payments, 48 concurrent clients; bank latency 1 s; 1 worker",
        faults="none (throughput under a slow bank)",
    )
    async with stack.client() as client:
        started = time.monotonic()
        answers = await burst(client, PAYMENTS, orders("a"))
    accepted = [a.payment_id for a in answers.accepted]
    row.measure(accept_per_s=round(len(accepted) / (answers.last_accept - started), 1))

    waited_before = time.monotonic() - answers.last_accept
    verdict = await conclude(stack, row, accepted, 60, answers)

    after_last = round(waited_before + row.measurements["settle_s"], 2)
    row.measure(final_s_after_last_accept=after_last)
    assert len(accepted) == PAYMENTS, answers.statuses
    assert verdict.ok, verdict
    assert row.card_data_found == 0
    assert after_last < 10
