"""Merchant webhooks end to end, with a real receiver that is down for its first three
attempts: embedded (`gateway dev`'s topology) and production (PostgreSQL, RabbitMQ, the
relay, the worker and the webhooks process)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Row, select

from gateway import bootstrap
from gateway.adapters.orm import webhook_deliveries
from gateway.adapters.rabbitmq_topology import Topology
from gateway.application.webhook_queries import AttemptView, ListDeliveryAttempts, ListEvents
from gateway.config import Settings
from gateway.domain.commands import CreateMerchant, CreateWebhookEndpoint, RequestPayment
from gateway.domain.result import Ok
from gateway.entrypoints.relay import run_relay
from gateway.entrypoints.webhooks import run_webhooks
from gateway.entrypoints.worker import run_worker
from tests.fixtures.database import drop_pg_database, new_pg_database, pg_database_url
from tests.fixtures.rabbitmq import AMQP_URL
from tests.integration.http_gateway import running_gateway
from tests.integration.webhook_receiver import Delivery, Receiver, running_receiver

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


def assert_attempt_log(attempts: Sequence[AttemptView | dict[str, Any]], event_id: str) -> None:
    rows = [a if isinstance(a, dict) else dataclasses.asdict(a) for a in attempts]
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


@pytest.fixture
async def production(topology: Topology) -> AsyncIterator[Settings]:
    database = await new_pg_database()
    settings = Settings(
        database_url=pg_database_url(database),
        broker_url=AMQP_URL,
        queue_prefix=topology.prefix,
        card_key=os.urandom(32),
        bank_latency_ms=0,
        webhook_allow_internal=True,
        webhook_retry_schedule=SCHEDULE,
    )
    container = bootstrap.build(settings)
    await bootstrap.migrate_database(container)
    await container.engine().dispose()
    yield settings
    await drop_pg_database(database)


@asynccontextmanager
async def processes(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_relay(settings, stop)),
        asyncio.create_task(run_worker(settings, stop, grace_s=2)),
        asyncio.create_task(run_webhooks(settings, stop, grace_s=2)),
    ]
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await asyncio.gather(*tasks)


async def request_payment(container: bootstrap.Container, receiver: Receiver) -> tuple[str, str]:
    """As the API process would: a merchant, its endpoint and a payment."""
    mediator = container.mediator()
    merchant = await mediator.send(CreateMerchant("Acme"))
    created = await mediator.send(
        CreateWebhookEndpoint(merchant.merchant_id, {"url": receiver.url})
    )
    assert isinstance(created, Ok)
    receiver.secret = created.value.secret.value
    body = {"amount": 1050, "currency": "GBP", "card": CARD}
    accepted = await mediator.send(RequestPayment(merchant.merchant_id, "order-1", body))
    assert isinstance(accepted, Ok)
    return merchant.merchant_id, accepted.value.job.payment_id


async def test_production_a_receiver_down_three_times_gets_the_event_once_afterwards(
    production: Settings,
) -> None:
    api = bootstrap.build(production)
    try:
        async with running_receiver(failures=3) as receiver, processes(production):
            merchant_id, payment_id = await request_payment(api, receiver)
            received = await receiver.wait_for(4, timeout_s=30)
            await asyncio.sleep(1.0)
        assert len(receiver.received) == 4
        event_id = assert_one_logical_delivery(received, payment_id)
        mediator = api.mediator()
        events = await mediator.ask(ListEvents(merchant_id))
        assert isinstance(events, Ok)
        assert [event.id for event in events.value.data] == [event_id]
        (delivery,) = await deliveries(api)
        assert (delivery.status, delivery.attempts) == ("delivered", 4)
        log = await mediator.ask(ListDeliveryAttempts(merchant_id, delivery.endpoint_id))
        assert isinstance(log, Ok)
        assert_attempt_log(list(log.value.data), event_id)
    finally:
        await api.engine().dispose()


async def deliveries(container: bootstrap.Container) -> list[Row[Any]]:
    async with container.engine().connect() as connection:
        return list((await connection.execute(select(webhook_deliveries))).all())
