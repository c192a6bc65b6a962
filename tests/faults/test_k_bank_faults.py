"""k. The bank misbehaves for a while under a steady load: it answers 503, then it answers
only after the worker's timeout, then it charges and the answer is lost on the way back.

The faults are made by an HTTP proxy of the test's own between the worker and the bank
simulator (`bank_faults.py`), switched on and off on a schedule. The oracle is the
simulator's ledger: no order charged twice, and wherever the bank decided, the gateway's
final status is the bank's; a payment the bank never saw may only have failed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

from tests.faults.bank_faults import BankFaults, Fault
from tests.faults.load import Answers, orders, steady
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack, connected, serving
from tests.fixtures.processes import free_port

RATE_PER_S = 15
TIMEOUT_S = 1.0  # the worker's bank timeout (GATEWAY_BANK_TIMEOUT_S); default attempts (5)
# Shorter than the retries of a payment whose every call is held (an attempt: the call and
# the status lookup, each timing out): its last attempts fall after the window.
WINDOW_S = 4
# Between two windows, 2 s without faults: longer than the longest pause between retries
# (1.6 s), so a payment still retrying after one window makes an attempt in between.
SCHEDULE: tuple[tuple[Fault | None, float], ...] = (
    (None, 2),
    (Fault.UNAVAILABLE, WINDOW_S),
    (None, 2),
    (Fault.SLOW, WINDOW_S),
    (None, 2),
    (Fault.DROP, WINDOW_S),
    (None, 2),
)
SECONDS = sum(seconds for _, seconds in SCHEDULE)


async def run_schedule(faults: BankFaults) -> list[tuple[Fault | None, float, float]]:
    """Switches the faults on and off; when each phase ran (monotonic seconds)."""
    phases = []
    for fault, seconds in SCHEDULE:
        faults.fault, started = fault, time.monotonic()
        await asyncio.sleep(seconds)
        phases.append((fault, started, time.monotonic()))
    faults.fault = None
    return phases


def phase_of(at: float, phases: list[tuple[Fault | None, float, float]]) -> str:
    for fault, started, ended in phases:
        if started <= at < ended:
            return fault.value if fault else "no fault"
    return "no fault"


async def test_a_bank_that_fails_times_out_and_loses_answers_never_charges_twice(
    stack: Stack, record: Callable[..., Row]
) -> None:
    faults, port = BankFaults(stack.bank_url, hold_s=TIMEOUT_S * 3), free_port()
    row = record(
        "k",
        "Bank 503s, timeouts, lost answers",
        load=f"{RATE_PER_S} payments/s for {SECONDS} s; worker's bank timeout {TIMEOUT_S:g} s,"
        " default retries",
        faults=f"between worker and bank, {WINDOW_S} s each: 503 from the bank; answers held"
        " past the timeout (the bank decided); the bank charges and the connection drops"
        " before the answer",
    )
    with serving(faults, port):
        stack.up(GATEWAY_BANK_URL=f"http://127.0.0.1:{port}", GATEWAY_BANK_TIMEOUT_S=str(TIMEOUT_S))
        answers = Answers()
        async with stack.client() as client:
            schedule = asyncio.create_task(run_schedule(faults))
            await steady(client, RATE_PER_S, SECONDS, orders("k"), answers)
            phases = await schedule
        accepted = [a.payment_id for a in answers.accepted]
        verdict = await conclude(stack, row, accepted, 60, answers)

    ledger = await stack.ledger()
    async with connected(stack.database) as db:
        rows = await db.fetch(
            "SELECT p.id, p.status, j.error_code FROM payments p JOIN jobs j ON j.payment_id = p.id"
        )
    status = {r["id"]: (r["status"], r["error_code"]) for r in rows}
    by_phase: dict[str, Counter[str]] = {}
    for a in answers.accepted:
        by_phase.setdefault(phase_of(a.at, phases), Counter())[status[a.payment_id][0]] += 1
    unseen = {pid: status[pid] for pid in accepted if pid not in ledger}
    row.measure(
        faults_made=dict(faults.counts),
        outcomes_by_phase_of_acceptance={k: dict(v) for k, v in by_phase.items()},
        payments_the_bank_never_saw=len(unseen),
    )

    assert len(accepted) == RATE_PER_S * SECONDS, answers.statuses
    assert set(faults.counts) == {
        "answered 503 by the proxy",
        "answers held past the timeout",
        "answers dropped after the charge",
    }
    # the bank never saw it: it can only have failed, as bank_unavailable
    assert set(unseen.values()) <= {("failed", "bank_unavailable")}, unseen
    # a held or lost answer is recovered by a retry or the status lookup: authorized
    for fault in (Fault.SLOW, Fault.DROP):
        assert set(by_phase[fault.value]) == {"authorized"}, by_phase
    assert verdict.ok, verdict
    assert row.card_data_found == 0
