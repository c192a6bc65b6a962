"""The production topology as real processes: `gateway migrate`, `bank-simulator`, `api`,
`relay` and `worker` on PostgreSQL and RabbitMQ, driven over HTTP like a merchant would;
for the pending cards the bank simulator posts its signed callbacks to the api process.

Each stack has its own database, queue prefix, ports and card key, so this file runs in
the parallel suite. The bank simulator's `GET /ledger` is the oracle for what was charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.faults import (
    Stack,
    connected,
    payment_body,
    production_stack,
    start_python,
    wait_for_log,
)
from tests.fixtures.processes import Processes, free_port, wait_until_ready
from tests.fixtures.rabbitmq import TcpProxy

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AUTHORIZED = ("4242424242424242", "5555555555554444", "378282246310005")
DECLINES = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
}
FAILING, DROPPED, HANGING = "4000000000000119", "4000000000003022", "4000000000003030"
WORKER_ENV = {"GATEWAY_BANK_TIMEOUT_S": "1", "GATEWAY_BANK_ATTEMPTS": "3"}
# The bank answers `202` for these; card → (status, decline_code, whether it calls back).
PENDING = {
    "4000000000003006": ("authorized", None, True),
    "4000000000003014": ("declined", "do_not_honor", True),
    "4000000000003048": ("authorized", None, False),  # settled by the status lookup
}
PENDING_TIMEOUT_S = 3
EVENT_TYPES = {  # payment status → the merchant event that settled it
    "authorized": "payment.authorized",
    "declined": "payment.declined",
    "failed": "payment.failed",
}


@pytest.fixture
def stack(processes: Processes) -> Iterator[Stack]:
    with production_stack(processes, WORKER_ENV) as stack:
        yield stack


async def pay(client: httpx.AsyncClient, number: str, key: str) -> httpx.Response:
    body = payment_body(number, reference=key[:50])
    return await client.post("/payments", json=body, headers={"Idempotency-Key": key})


async def final_job(client: httpx.AsyncClient, location: str, within_s: float = 30) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        job = (await client.get(location)).json()
        if job["status"] != "created":
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"{location} still created after {within_s}s")


async def settled(client: httpx.AsyncClient, number: str) -> tuple[Any, Any, float]:
    """Pays with `number`; the final job, its payment and the seconds it took."""
    started = time.monotonic()
    accepted = await pay(client, number, f"order-{number}-{time.time_ns()}")
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["location"] == f"/jobs/{accepted.json()['id']}"
    job = await final_job(client, accepted.headers["location"])
    payment = (await client.get(f"/payments/{job['payment_id']}")).json()
    return job, payment, time.monotonic() - started


def test_api_refuses_to_start_on_an_unmigrated_database(stack: Stack) -> None:
    result = stack.processes.run("api", "--host", "127.0.0.1", "--port", str(free_port()))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gateway: the database schema is not up to date: run `gateway migrate` first"
    ]


async def test_the_production_processes_honour_the_contract(stack: Stack) -> None:
    stack.up()
    other_key = stack.create_merchant("Other shop")
    async with stack.client() as client:
        cards = [*AUTHORIZED, *DECLINES, FAILING, DROPPED, HANGING]
        finals = await asyncio.gather(*(settled(client, number) for number in cards))
        outcomes = dict(zip(cards, finals, strict=True))
        events = {n: await events_of(client, p) for n, (_, p, _) in outcomes.items()}
        failed_ids = await event_ids_of_type(client, "payment.failed")
        await check_replay_and_reuse(client)
        job, payment, _ = outcomes[AUTHORIZED[0]]
        async with stack.client(other_key) as other:
            for path in (f"/jobs/{job['id']}", f"/payments/{payment['id']}"):
                answer = await other.get(path)
                assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
        assert (await client.get("/health/ready")).status_code == 200

    for number in AUTHORIZED:
        job, payment, _ = outcomes[number]
        assert (job["status"], payment["status"]) == ("completed", "authorized")
        assert payment["card"]["last4"] == number[-4:]
    for number, code in DECLINES.items():
        job, payment, _ = outcomes[number]
        assert (job["status"], payment["status"], payment["decline_code"]) == (
            "completed",
            "declined",
            code,
        )
    job, payment, seconds = outcomes[FAILING]
    assert (job["status"], job["error"]["code"], payment["status"]) == (
        "failed",
        "bank_unavailable",
        "failed",
    )
    assert seconds < 30
    for number, (_, payment, _) in outcomes.items():  # one merchant event per settled payment
        assert [event["type"] for event in events[number]] == [EVENT_TYPES[payment["status"]]]
    assert failed_ids == [events[FAILING][0]["id"]]
    ledger = await stack.ledger()
    for number in (DROPPED, HANGING):
        job, payment, _ = outcomes[number]
        assert payment["status"] == "authorized"
        assert ledger[payment["id"]]["outcome"] == "authorized"
        assert ledger[payment["id"]]["calls"] >= 1
    assert ledger[outcomes[DROPPED][1]["id"]]["calls"] == 1  # settled by the status lookup


async def events_of(client: httpx.AsyncClient, payment: Any) -> list[Any]:
    """The merchant's events for `payment`; each carries the payment as it is now."""
    answer = await client.get("/events", params={"payment_id": payment["id"]})
    assert answer.status_code == 200, answer.text
    events: list[Any] = answer.json()["data"]
    assert all(event["data"] == payment for event in events)
    return events


async def event_ids_of_type(client: httpx.AsyncClient, event_type: str) -> list[str]:
    answer = await client.get("/events", params={"type": event_type, "limit": "100"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["has_more"] is False
    return [event["id"] for event in answer.json()["data"]]


async def test_pending_cards_settle_by_the_banks_signed_callback_or_the_status_lookup(
    stack: Stack,
) -> None:
    stack.processes.env |= {
        "GATEWAY_BANK_WEBHOOK_SECRET": "e2e-bank-secret",
        "GATEWAY_BANK_WEBHOOK_URL": f"{stack.api_url}/webhooks/bank",  # the api process
    }
    stack.up(GATEWAY_BANK_PENDING_TIMEOUT_S=str(PENDING_TIMEOUT_S))
    async with stack.client() as client:
        finals = await asyncio.gather(*(settled(client, number) for number in PENDING))
        outcomes = dict(zip(PENDING, finals, strict=True))
        events = {n: await events_of(client, p) for n, (_, p, _) in outcomes.items()}
    ledger = await stack.ledger()
    async with connected(stack.database) as connection:
        rows = await connection.fetch("SELECT payment_id, type, outcome FROM bank_callbacks")
    callbacks = {row["payment_id"]: (row["type"], row["outcome"]) for row in rows}

    for number, (status, decline_code, calls_back) in PENDING.items():
        job, payment, seconds = outcomes[number]
        assert (job["status"], job["error"]) == ("completed", None), number
        assert (payment["status"], payment["decline_code"]) == (status, decline_code), number
        assert bool(payment["authorization_code"]) is (status == "authorized"), number
        assert [e["type"] for e in events[number]] == [EVENT_TYPES[status]], number
        charge = ledger[payment["id"]]  # exactly one charge: one call, one outcome
        assert (charge["calls"], charge["outcome"]) == (1, status), number
        if calls_back:  # recorded and applied: the callback settled it, not the lookup
            assert callbacks[payment["id"]] == (EVENT_TYPES[status], "applied"), number
        else:
            assert payment["id"] not in callbacks
            assert seconds >= PENDING_TIMEOUT_S
    assert len(callbacks) == 2
    assert len(ledger) == len(PENDING)


async def check_replay_and_reuse(client: httpx.AsyncClient) -> None:
    first = await pay(client, AUTHORIZED[0], "order-replay")
    again = await pay(client, AUTHORIZED[0], "order-replay")
    other = await pay(client, AUTHORIZED[1], "order-replay")

    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["id"] == first.json()["id"]
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


def test_readiness_is_503_when_the_broker_cannot_be_reached(stack: Stack) -> None:
    stack.migrate()
    port = free_port()
    nowhere = {"GATEWAY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/"}
    api = stack.start_api(port, **nowhere)
    wait_until_ready(api, f"http://127.0.0.1:{port}/health/live")

    answer = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)

    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "not_ready"
    assert "broker" in answer.json()["detail"]


async def test_the_worker_speaks_the_challenge_banks_base_protocol(stack: Stack) -> None:
    port = free_port()
    bank = start_python(
        stack.processes,
        "base-bank",
        *("-m", "uvicorn", "tests.integration.base_bank:BaseBank", "--factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        cwd=ROOT,
    )
    stack.processes.env["GATEWAY_BANK_URL"] = f"http://127.0.0.1:{port}"
    stack.migrate()
    stack.create_merchant()
    api, relay, worker = stack.start_api(), stack.start_relay(), stack.start_worker()
    wait_until_ready(api, f"{stack.api_url}/health/live")
    wait_for_log(worker, "worker_started")
    wait_for_log(relay, "relay_started")
    assert bank.popen.poll() is None, bank.output()

    async with stack.client() as client:
        cards = ("4111111111111111", "378282246310005", "4242424242424242", "4000000000000010")
        odd_visa, odd_amex, even, zero = await asyncio.gather(*(settled(client, n) for n in cards))

    for job, payment, _ in (odd_visa, odd_amex):
        assert (job["status"], payment["status"]) == ("completed", "authorized")
        assert payment["authorization_code"]
    assert (even[1]["status"], even[1]["decline_code"]) == ("declined", "card_declined")
    job, payment, _ = zero
    assert (job["status"], job["error"]["code"]) == ("failed", "bank_unavailable")
    assert payment["status"] == "failed"


async def test_a_database_outage_answers_503_and_the_api_recovers_by_itself(stack: Stack) -> None:
    stack.migrate()
    stack.create_merchant()
    proxy = TcpProxy(target_port=5432)  # the API reaches PostgreSQL only through it
    await proxy.start()
    database_url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{stack.database}"
    stack.start_api(GATEWAY_DATABASE_URL=database_url)
    try:
        async with stack.client() as client:
            await until_live(client)
            await proxy.stop()
            proxy.cut()
            down = await pay(client, AUTHORIZED[0], "order-outage")
            await proxy.start()
            up = await pay(client, AUTHORIZED[0], "order-outage")
    finally:
        await proxy.close()

    assert down.status_code == 503, down.text
    assert down.headers["content-type"] == "application/problem+json"
    assert down.headers["retry-after"] == "1"
    assert down.json()["code"] == "service_unavailable"
    assert "Traceback" not in down.text
    assert up.status_code == 202, up.text


async def until_live(client: httpx.AsyncClient, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/health/live")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the API did not start")
