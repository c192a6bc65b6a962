"""The bank's 202 cards on the production topology: PostgreSQL, RabbitMQ, `run_relay`,
`run_worker` (its in-process bank simulator posting signed callbacks) and the API app
under uvicorn receiving them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from gateway import bootstrap
from gateway.adapters.rabbitmq_topology import Topology
from gateway.config import Settings
from gateway.domain.commands import CreateMerchant
from gateway.entrypoints.http.app import create_app
from gateway.entrypoints.relay import run_relay
from gateway.entrypoints.worker import run_worker
from tests.fixtures.database import drop_pg_database, new_pg_database, pg_database_url
from tests.fixtures.processes import free_port
from tests.fixtures.rabbitmq import AMQP_URL
from tests.integration.served_gateway import (
    BANK_SECRET,
    PENDING_CARDS,
    SILENT_CARD,
    callbacks_of,
    final_job,
    pay,
    payment_of,
    pending_rows,
    served,
    webhook_url,
)


@pytest.fixture
async def settings(topology: Topology) -> AsyncIterator[Settings]:
    database = await new_pg_database()
    settings = Settings(
        database_url=pg_database_url(database),
        broker_url=AMQP_URL,
        queue_prefix=topology.prefix,
        card_key=os.urandom(32),
        bank_latency_ms=0,
        bank_webhook_url=webhook_url(free_port()),
        bank_webhook_secret=BANK_SECRET,
        bank_pending_timeout_s=3.0,
        api_key_cache_s=0,
    )
    container = bootstrap.build(settings)
    await bootstrap.migrate_database(container)
    await container.engine().dispose()
    yield settings
    await drop_pg_database(database)


async def test_cards_answered_202_settle_through_the_api_webhook_and_the_worker_sweep(
    settings: Settings,
) -> None:
    api = bootstrap.build(settings)
    api_key = (await api.mediator().send(CreateMerchant("Acme"))).api_key.value
    port = int((settings.bank_webhook_url or "").rsplit(":", 1)[1].split("/")[0])
    stop = asyncio.Event()
    processes = [
        asyncio.create_task(run_relay(settings, stop)),
        asyncio.create_task(run_worker(settings, stop, grace_s=2)),
    ]
    try:
        async with served(create_app(api), port) as client:
            cards = {**PENDING_CARDS, "lookup": SILENT_CARD}
            locations = {name: await pay(client, api_key, card) for name, card in cards.items()}
            jobs = {
                name: await final_job(client, api_key, loc, 20) for name, loc in locations.items()
            }
            payments = {name: await payment_of(client, api_key, job) for name, job in jobs.items()}
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await asyncio.gather(*processes)

    assert [job["status"] for job in jobs.values()] == ["completed"] * 3
    assert payments["webhook_authorized"]["status"] == "authorized"
    declined = payments["webhook_declined"]
    assert (declined["status"], declined["decline_code"]) == ("declined", "do_not_honor")
    assert payments["lookup"]["status"] == "authorized"
    for name, kind in (("webhook_authorized", "authorized"), ("webhook_declined", "declined")):
        recorded = await callbacks_of(api, payments[name]["id"])
        assert recorded == [(f"payment.{kind}", "applied")]
    assert await callbacks_of(api, payments["lookup"]["id"]) == []
    assert await pending_rows(api) == 0
    await api.engine().dispose()
