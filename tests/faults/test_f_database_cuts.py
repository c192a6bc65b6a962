"""f. PostgreSQL connections of the scenario's database are terminated again and again under
load: the API answers 503 problem+json with Retry-After (never a 500, never a trace),
recovers by itself, and a retry with the same Idempotency-Key makes one payment."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from tests.faults.load import Answers, orders, steady
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack, connected, terminate_backends

RATE_PER_S, SECONDS = 50, 10
PAYMENTS = RATE_PER_S * SECONDS
CUT_FOR_S = 12


async def cut_connections(database: str, seconds: float) -> tuple[int, int]:
    """Every 0.2–0.6 s: holds `payments` locked for 0.3 s, so requests wait in the middle of
    their queries, then terminates every other connection to `database`.
    Returns (rounds, connections terminated)."""
    rounds = cut = 0
    deadline = time.monotonic() + seconds
    async with connected(database) as locker:
        while time.monotonic() < deadline:
            await asyncio.sleep(random.uniform(0.2, 0.6))
            async with locker.transaction():
                await locker.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
                await asyncio.sleep(0.3)
                cut += await terminate_backends(database, sparing=locker.get_server_pid())
            rounds += 1
    return rounds, cut


def bad_refusals(answers: Answers) -> list[str]:
    """Refusals that break the contract: anything but a well-formed 503 or 409 problem."""
    bad = []
    for response in answers.refused:
        problem = response.headers.get("content-type") == "application/problem+json"
        retry_after = "retry-after" in response.headers
        trace = "Traceback" in response.text or 'File "' in response.text
        if response.status_code not in (409, 503) or not problem or not retry_after or trace:
            bad.append(f"{response.status_code} {response.text[:300]}")
    return bad


async def test_cut_database_connections_answer_503_and_retries_make_one_payment_each(
    stack: Stack, record: Callable[..., Row]
) -> None:
    stack.up()
    row = record(
        "f",
        "Database connections cut",
        load=f"{RATE_PER_S} payments/s for {SECONDS} s, each retried on 503/409 until accepted",
        faults="pg_terminate_backend on every connection to the database, with requests"
        f" mid-query (a 0.3 s table lock first), every 0.5–0.9 s for {CUT_FOR_S} s",
    )
    async with stack.client() as client:
        cuts = asyncio.create_task(cut_connections(stack.database, CUT_FOR_S))
        answers = Answers()
        await steady(client, RATE_PER_S, SECONDS, orders("f"), answers)
        rounds, cut = await cuts
        recovered = await client.post(
            "/payments", json=orders("f")(PAYMENTS)[1], headers={"Idempotency-Key": "f-after"}
        )
    bad = bad_refusals(answers)
    row.measure(
        termination_rounds=rounds,
        connections_terminated=cut,
        accepts_retried_on_a_fresh_connection=stack.processes.logs().count('"accept_retried"'),
        contract_breaking_answers=bad[:5],
    )
    async with connected(stack.database) as db:
        per_key = await db.fetch(
            "SELECT reference, count(*) AS n FROM payments GROUP BY reference HAVING count(*) > 1"
        )

    assert recovered.status_code == 202, recovered.text
    # The payment made after the cuts is judged too, so wait for it as well: judged while
    # the worker still held the bank's answer, it showed as a disagreement.
    accepted = [a.payment_id for a in answers.accepted] + [recovered.json()["payment_id"]]
    verdict = await conclude(stack, row, accepted, 90, answers)

    assert len({a.key for a in answers.accepted}) == PAYMENTS, answers.statuses
    # The cuts reached the API: it answered 503, or tried the accept again on a fresh
    # connection (a statement made idempotent by its key) so the client never saw them.
    retried = stack.processes.logs().count('"accept_retried"')
    assert cut > 0
    assert answers.statuses[503] + retried > 0, "no fault reached the API"
    assert not bad, bad[:5]
    assert not per_key, per_key
    assert verdict.ok, verdict
    assert row.card_data_found == 0
