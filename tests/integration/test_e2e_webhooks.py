"""Merchant webhooks end to end, with a real receiver that is down for its first three
attempts: embedded (`gateway dev`'s topology) and production (real `gateway api`, `relay`,
`worker`, `bank-simulator` and `webhooks` processes on PostgreSQL and RabbitMQ)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.faults import Stack, connected, production_stack, wait_for_log
from tests.fixtures.processes import Processes
from tests.integration.http_gateway import running_gateway
from tests.integration.webhook_receiver import Delivery, running_receiver

SCHEDULE = (0.2, 0.2, 0.2, 0.2)
CARD = {"number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "123"}


def assert_one_logical_delivery(received: list[Delivery], payment_id: str) -> str:
    """Four attempts of one event, each freshly signed and verified; the fourth succeeded."""
    assert [d.status for d in received] == [500, 500, 500, 200]
    bodies = [json.loads(d.body) for d in received]
    event_id = bodies[0]["id"]
    assert event_id.startswith("evt_")
    assert all(body == bodies[0] for body in bodies)  # the same event, byte for byte
    assert {d.headers["gateway-event-id"] for d in received} == {event_id}
    assert bodies[0]["type"] == "payment.authorized"
    assert bodies[0]["data"]["id"] == payment_id
    assert bodies[0]["data"]["status"] == "authorized"
    assert all(d.stripe_valid and d.gateway_valid for d in received)
    stamps = [int(d.headers["gateway-signature"].split(",")[0][2:]) for d in received]
    assert stamps == sorted(stamps)
    # Signed at the moment of each attempt, not once for all of them.
    assert all(abs(d.received_at - t) <= 1.5 for d, t in zip(received, stamps, strict=True))
    return str(event_id)


def assert_attempt_log(rows: Sequence[dict[str, Any]], event_id: str) -> None:
    """`GET /webhook-endpoints/{id}/deliveries`: four attempts of the event, the last one
    delivered (nothing scheduled after it)."""
    assert sorted((r["attempt"], r["status_code"]) for r in rows) == [
        (1, 500),
        (2, 500),
        (3, 500),
        (4, 200),
    ]
    assert {r["event_id"] for r in rows} == {event_id}
    assert [r["next_attempt_at"] is None for r in sorted(rows, key=lambda r: r["attempt"])] == [
        False,
        False,
        False,
        True,
    ]


async def test_embedded_a_receiver_down_three_times_gets_the_event_once_afterwards(
    tmp_path: Path,
) -> None:
    settings = {"webhook_allow_internal": True, "webhook_retry_schedule": SCHEDULE}
    async with running_receiver(failures=3) as receiver, running_gateway(tmp_path, settings) as gw:
        answer = await gw.client.post(
            "/webhook-endpoints", json={"url": receiver.url}, headers=gw.headers()
        )
        assert answer.status_code == 201, answer.text
        endpoint = answer.json()
        receiver.secret = endpoint["secret"]

        payment = await gw.settled_payment()
        received = await receiver.wait_for(4)
        await asyncio.sleep(1.0)  # nothing more arrives: one logical delivery
        log = (await gw.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()
        events = (await gw.get("/events")).json()["data"]

    assert len(receiver.received) == 4
    event_id = assert_one_logical_delivery(received, payment["id"])
    assert_attempt_log(log["data"], event_id)
    assert [event["id"] for event in events] == [event_id]
    assert events[0]["data"] == payment


WEBHOOK_ENV = {  # the api checks URLs at registration, `gateway webhooks` at delivery
    "GATEWAY_WEBHOOK_ALLOW_INTERNAL": "true",
    "GATEWAY_WEBHOOK_RETRY_SCHEDULE": ",".join(str(delay) for delay in SCHEDULE),
}


@pytest.fixture
def stack(processes: Processes) -> Iterator[Stack]:
    with production_stack(processes, WEBHOOK_ENV) as stack:
        yield stack


@pytest.mark.e2e
async def test_production_a_receiver_down_three_times_gets_the_event_once_afterwards(
    stack: Stack,
) -> None:
    stack.up(bank_latency_ms=0)
    webhooks = stack.processes.start("webhooks", "webhooks")
    wait_for_log(webhooks, "webhooks_started")
    async with running_receiver(failures=3) as receiver, stack.client() as client:
        answer = await client.post("/webhook-endpoints", json={"url": receiver.url})
        assert answer.status_code == 201, answer.text
        endpoint = answer.json()
        receiver.secret = endpoint["secret"]
        body = {"amount": 1050, "currency": "GBP", "card": CARD}
        accepted = await client.post("/payments", json=body, headers={"Idempotency-Key": "o-1"})
        assert accepted.status_code == 202, accepted.text

        received = await receiver.wait_for(4, timeout_s=30)
        await asyncio.sleep(1.0)  # nothing more arrives: one logical delivery
        payment = (await client.get(f"/payments/{accepted.json()['payment_id']}")).json()
        log = (await client.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()
        events = (await client.get("/events")).json()["data"]
    async with connected(stack.database) as connection:
        deliveries = await connection.fetch("SELECT status, attempts FROM webhook_deliveries")

    assert len(receiver.received) == 4
    event_id = assert_one_logical_delivery(received, payment["id"])
    assert_attempt_log(log["data"], event_id)
    assert [event["id"] for event in events] == [event_id]
    assert events[0]["data"] == payment
    assert [(row["status"], row["attempts"]) for row in deliveries] == [("delivered", 4)]
