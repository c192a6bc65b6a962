"""g. The bank answers 503 for some payments (a card it always fails) among good ones."""

from __future__ import annotations

from collections.abc import Callable

from tests.faults.load import FAILING_CARD, GOOD_CARDS, burst, orders
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack, connected

PAYMENTS = 200
CARDS = (*GOOD_CARDS, FAILING_CARD)  # one payment in four fails at the bank


async def test_payments_the_bank_keeps_failing_end_bank_unavailable_and_the_rest_authorized(
    stack: Stack, record: Callable[..., Row]
) -> None:
    stack.up()
    row = record(
        "g",
        "Bank answering 503",
        load=f"{PAYMENTS} payments at once, one in four with a card the bank fails (HTTP 503)",
        faults="bank 503 on every call for those payments; default retry settings",
    )
    async with stack.client() as client:
        answers = await burst(client, PAYMENTS, orders("g", CARDS))
    accepted = [a.payment_id for a in answers.accepted]

    verdict = await conclude(stack, row, accepted, 60, answers)

    async with connected(stack.database) as db:
        rows = await db.fetch(
            "SELECT p.card_last4 AS last4, p.status, p.failure_code, j.error_code,"
            " extract(epoch FROM j.completed_at - p.created_at) AS seconds"
            " FROM payments p JOIN jobs j ON j.payment_id = p.id"
        )
    failing = [r for r in rows if r["last4"] == FAILING_CARD[-4:]]
    good = [r for r in rows if r["last4"] != FAILING_CARD[-4:]]
    slowest = max(float(r["seconds"]) for r in rows)
    row.measure(slowest_payment_s=round(slowest, 2))
    assert len(accepted) == PAYMENTS, answers.statuses
    assert len(failing) == PAYMENTS // 4
    assert {(r["status"], r["failure_code"], r["error_code"]) for r in failing} == {
        ("failed", "bank_unavailable", "bank_unavailable")
    }
    assert {r["status"] for r in good} == {"authorized"}
    assert slowest < 30
    assert verdict.ok, verdict
    assert row.card_data_found == 0
