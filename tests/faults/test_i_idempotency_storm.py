"""i. Concurrent requests with one Idempotency-Key, spread over two API processes: one
payment, one job, one outbox row, one charge; every other answer a replay, a 409 with
Retry-After, or (for another body) a 422 — never a second payment."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from tests.faults.load import GOOD_CARDS
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack, connected, payment_body
from tests.fixtures.processes import free_port, wait_until_ready

COPIES = 200


async def storm(
    clients: list[httpx.AsyncClient], key: str, bodies: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], httpx.Response]]:
    """Every body POSTed at once under `key`, alternately to each API process."""

    async def post(n: int, body: dict[str, Any]) -> tuple[dict[str, Any], httpx.Response]:
        client = clients[n % len(clients)]
        return body, await client.post("/payments", json=body, headers={"Idempotency-Key": key})

    return await asyncio.gather(*(post(n, body) for n, body in enumerate(bodies)))


def refusal_code(response: httpx.Response) -> str:
    problem = response.headers.get("content-type") == "application/problem+json"
    code = response.json().get("code") if problem else "not a problem"
    if response.status_code == 409 and "retry-after" not in response.headers:
        return f"{code} without Retry-After"
    return str(code)


async def rows_for(stack: Stack, reference: str) -> tuple[list[Any], int, int]:
    """The payments of an order, with their jobs and outbox rows counted."""
    async with connected(stack.database) as db:
        payments = await db.fetch("SELECT id, amount FROM payments WHERE reference = $1", reference)
        ids = [p["id"] for p in payments]
        jobs = await db.fetchval("SELECT count(*) FROM jobs WHERE payment_id = ANY($1)", ids)
        outbox = await db.fetchval(
            "SELECT count(*) FROM outbox WHERE payload LIKE ANY($1)", [f"%{i}%" for i in ids]
        )
    return list(payments), jobs, outbox


async def test_one_key_under_concurrent_requests_makes_exactly_one_payment(
    stack: Stack, record: Callable[..., Row]
) -> None:
    stack.up()
    second_port = free_port()
    wait_until_ready(stack.start_api(second_port), f"http://127.0.0.1:{second_port}/health/live")
    row = record(
        "i",
        "Idempotency-Key storm",
        load=f"{COPIES} identical POSTs at once with one key; then {COPIES // 2} + "
        f"{COPIES // 2} POSTs with two bodies and one key; over 2 API processes",
        faults="concurrent duplicates and key reuse across processes",
    )
    same = payment_body(GOOD_CARDS[0], reference="i-same")
    one, other = payment_body(GOOD_CARDS[0], "i-two", 1000), payment_body(GOOD_CARDS[1], "i-two")
    mixed = [one, other] * (COPIES // 2)
    random.shuffle(mixed)
    async with stack.client() as first, stack.client(port=second_port) as second:
        identical = await storm([first, second], "i-same", [same] * COPIES)
        two_bodies = await storm([first, second], "i-two", mixed)

    accepted = [r.json() for _, r in identical + two_bodies if r.status_code == 202]
    verdict = await conclude(stack, row, {job["payment_id"] for job in accepted}, timeout_s=30)
    ledger = await stack.ledger()

    same_payments, same_jobs, same_outbox = await rows_for(stack, "i-same")
    two_payments, two_jobs, two_outbox = await rows_for(stack, "i-two")
    identical_answers = Counter(r.status_code for _, r in identical)
    two_answers = Counter(
        f"{r.status_code} {'first' if body is one else 'second'} body" for body, r in two_bodies
    )
    row.measure(identical_key=dict(identical_answers), two_bodies_one_key=dict(two_answers))

    # one key, one body: one payment; the rest replays or 409s with Retry-After
    assert (len(same_payments), same_jobs, same_outbox) == (1, 1, 1)
    assert set(identical_answers) <= {202, 409}
    assert {r.json()["id"] for _, r in identical if r.status_code == 202} != set()
    assert len({r.json()["id"] for _, r in identical if r.status_code == 202}) == 1
    assert {refusal_code(r) for _, r in identical if r.status_code == 409} <= {
        "idempotency_key_in_progress"
    }
    # one key, two bodies: one payment, made from the body of every 202
    assert (len(two_payments), two_jobs, two_outbox) == (1, 1, 1)
    winner = one if two_payments[0]["amount"] == one["amount"] else other
    assert {body is winner for body, r in two_bodies if r.status_code == 202} == {True}
    assert {r.status_code for body, r in two_bodies if body is not winner} <= {409, 422}
    assert {refusal_code(r) for _, r in two_bodies if r.status_code != 202} <= {
        "idempotency_key_in_progress",
        "idempotency_key_reused",
    }
    charged = [ledger[p["id"]] for p in same_payments + two_payments]
    assert [entry["outcome"] for entry in charged] == ["authorized", "authorized"]
    assert verdict.ok, verdict
    assert row.card_data_found == 0
