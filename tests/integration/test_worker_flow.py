"""`run_relay` and `run_worker` on PostgreSQL, RabbitMQ and the in-process bank simulator."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import aio_pika
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.adapters.bank_http import in_process_client
from gateway.adapters.orm import outbox
from gateway.adapters.rabbitmq_topology import MAKE_PAYMENT, Topology
from gateway.application.queries import GetJob, GetPayment, JobView
from gateway.config import Settings
from gateway.domain.commands import AbandonPayment, CreateMerchant, MakePayment, RequestPayment
from gateway.domain.result import Ok
from gateway.entrypoints import relay
from gateway.entrypoints.relay import run_relay
from gateway.entrypoints.worker import run_worker
from tests.fixtures.database import drop_pg_database, new_pg_database, pg_database_url
from tests.fixtures.rabbitmq import AMQP_URL, drain, eventually

CARD = {"number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "123"}


@pytest.fixture
async def settings(topology: Topology) -> AsyncIterator[Settings]:
    database = await new_pg_database()
    settings = Settings(
        database_url=pg_database_url(database),
        broker_url=AMQP_URL,
        queue_prefix=topology.prefix,
        card_key=os.urandom(32),
        bank_latency_ms=1000,
        worker_concurrency=64,
    )
    container = bootstrap.build(settings)
    await bootstrap.migrate_database(container)
    await container.engine().dispose()
    yield settings
    await drop_pg_database(database)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[bootstrap.Container]:
    """The API process's side: requests payments and reads jobs."""
    container = bootstrap.build(settings)
    yield container
    await container.engine().dispose()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    processes = [
        asyncio.create_task(run_relay(settings, stop)),
        asyncio.create_task(run_worker(settings, stop, grace_s=2)),
    ]
    try:
        yield
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*processes)


async def request_payments(container: bootstrap.Container, how_many: int) -> list[JobView]:
    mediator = container.mediator()
    merchant = await mediator.send(CreateMerchant("Acme"))
    jobs = []
    for n in range(how_many):
        body = {"amount": 1050, "currency": "GBP", "card": CARD}
        match await mediator.send(RequestPayment(merchant.merchant_id, f"key-{n}", body)):
            case Ok(accepted):
                jobs.append(await job(container, merchant.merchant_id, accepted.job.id))
            case other:
                raise AssertionError(other)
    return jobs


async def job(container: bootstrap.Container, merchant_id: str, job_id: str) -> JobView:
    result = await container.mediator().ask(GetJob(merchant_id, job_id))
    assert isinstance(result, Ok)
    return result.value


async def wait_for_jobs(
    container: bootstrap.Container, merchant_id: str, jobs: list[JobView], timeout_s: float
) -> list[JobView]:
    deadline = time.monotonic() + timeout_s
    while True:
        now = [await job(container, merchant_id, j.id) for j in jobs]
        if all(j.status != "created" for j in now) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.1)


async def merchant_of(container: bootstrap.Container, payment_id: str) -> str:
    async with container.uow() as uow:
        payment = await uow.payments.get(payment_id)
    assert payment is not None
    return payment.merchant_id


async def test_a_slow_bank_does_not_cap_throughput(
    settings: Settings, api: bootstrap.Container
) -> None:
    jobs = await request_payments(api, 30)  # the bank takes 1 s per payment
    merchant_id = await merchant_of(api, jobs[0].payment_id)
    published = REGISTRY.get_sample_value("gateway_outbox_published_total") or 0.0
    started = time.perf_counter()

    async with running(settings):
        done = await wait_for_jobs(api, merchant_id, jobs, timeout_s=20)

    assert [j.status for j in done] == ["completed"] * 30
    assert time.perf_counter() - started < 10  # one at a time would take 30 s
    assert REGISTRY.get_sample_value("gateway_outbox_published_total") == published + 30
    payment = await api.mediator().ask(GetPayment(merchant_id, jobs[0].payment_id))
    assert isinstance(payment, Ok)
    assert payment.value.status == "authorized"


async def test_a_redelivered_message_for_a_finished_payment_is_acked_without_calling_the_bank(
    settings: Settings, api: bootstrap.Container, topology: Topology
) -> None:
    # The worker's side, wired by bootstrap, sharing the in-process bank's ledger with us.
    (accepted,) = await request_payments(api, 1)
    merchant_id = await merchant_of(api, accepted.payment_id)
    handled = make_payments_handled()
    await bootstrap.connect_broker(api)
    consumers = await bootstrap.start_consuming(api)
    try:
        await bootstrap.broker_relay(api, lambda *_: None).relay_once()
        await eventually(lambda: make_payments_handled() == handled + 1)
        await publish(topology, topology.exchange, accepted, merchant_id)  # a duplicate
        await eventually(lambda: make_payments_handled() == handled + 2)
    finally:
        await consumers.stop(grace_s=5)
        await bootstrap.close_broker(api)

    async with in_process_client(api.bank_simulator()) as bank:
        ledger = (await bank.get("/ledger")).json()["payments"]
    assert [row["calls"] for row in ledger if row["idempotency_key"] == accepted.payment_id] == [1]
    assert await drain(topology.queue, 1, timeout_s=0.3) == []  # the duplicate was acked
    assert (await job(api, merchant_id, accepted.id)).status == "completed"


def make_payments_handled() -> float:
    labels = {"message": "MakePayment", "outcome": "ok"}
    return REGISTRY.get_sample_value("gateway_messages_total", labels) or 0.0


async def test_a_dead_lettered_payment_fails_its_job_with_processing_failed(
    settings: Settings, api: bootstrap.Container, topology: Topology
) -> None:
    (accepted,) = await request_payments(api, 1)
    merchant_id = await merchant_of(api, accepted.payment_id)

    async with running(settings):
        await asyncio.sleep(0.5)  # the worker declared the topology
        # As the broker does after the delivery limit: straight to the dead-letter exchange.
        await publish(topology, topology.dead_letter_exchange, accepted, merchant_id)
        done = await wait_for_jobs(api, merchant_id, [accepted], timeout_s=10)

    assert done[0].status == "failed"
    assert done[0].error_code == "processing_failed"
    payment = await api.mediator().ask(GetPayment(merchant_id, accepted.payment_id))
    assert isinstance(payment, Ok)
    assert payment.value.status == "failed"


async def publish(topology: Topology, exchange_name: str, job: JobView, merchant_id: str) -> None:
    body = {"payment_id": job.payment_id, "job_id": job.id, "merchant_id": merchant_id}
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(exchange_name)
        message = aio_pika.Message(json.dumps(body).encode(), message_id="dup", type=MAKE_PAYMENT)
        await exchange.publish(message, MAKE_PAYMENT)


async def test_relay_waits_for_a_broker_that_is_down_and_stops_when_told(
    settings: Settings,
) -> None:
    unreachable = Settings(**{**settings.__dict__, "broker_url": "amqp://guest:guest@127.0.0.1:1/"})
    stop = asyncio.Event()
    relay = asyncio.create_task(run_relay(unreachable, stop))
    await asyncio.sleep(1)
    assert not relay.done()

    stop.set()
    await asyncio.wait_for(relay, timeout=3)


async def test_broker_readiness(settings: Settings) -> None:
    no_broker = bootstrap.build(Settings(**{**settings.__dict__, "broker_url": None}))
    down = bootstrap.build(
        Settings(**{**settings.__dict__, "broker_url": "amqp://guest:guest@127.0.0.1:1/"})
    )
    up = bootstrap.build(settings)
    try:
        assert await bootstrap.broker_ready(no_broker)
        assert not await bootstrap.broker_ready(down)
        assert await bootstrap.broker_ready(up)
    finally:
        await bootstrap.close_broker(up)


async def test_abandoning_a_finished_payment_changes_nothing(
    settings: Settings, api: bootstrap.Container
) -> None:
    (accepted,) = await request_payments(api, 1)
    merchant_id = await merchant_of(api, accepted.payment_id)
    ids = (accepted.payment_id, accepted.id, merchant_id)
    await api.mediator().send(MakePayment(*ids))

    result = await api.mediator().send(AbandonPayment(*ids, "delivery_limit"))

    assert isinstance(result, Ok)
    assert result.value.status == "authorized"
    assert (await job(api, merchant_id, accepted.id)).status == "completed"


async def test_abandoning_twice_fails_the_payment_once(
    settings: Settings, api: bootstrap.Container
) -> None:
    (accepted,) = await request_payments(api, 1)
    merchant_id = await merchant_of(api, accepted.payment_id)
    abandon = AbandonPayment(accepted.payment_id, accepted.id, merchant_id, "rejected")

    first = await api.mediator().send(abandon)
    failed = await job(api, merchant_id, accepted.id)
    second = await api.mediator().send(abandon)

    assert isinstance(first, Ok)
    assert isinstance(second, Ok)
    assert second.value.status == "failed"
    assert (failed.status, failed.error_code) == ("failed", "processing_failed")
    assert await job(api, merchant_id, accepted.id) == failed


async def test_the_relay_purges_sent_outbox_rows_once_they_are_old_enough(
    settings: Settings, api: bootstrap.Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay, "PURGE_INTERVAL_S", 0.2)
    monkeypatch.setattr(relay, "PURGE_SENT_AFTER", timedelta(0))
    jobs = await request_payments(api, 3)
    merchant_id = await merchant_of(api, jobs[0].payment_id)

    async def outbox_rows() -> int:
        async with api.engine().connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(outbox)) or 0)

    assert await outbox_rows() == 3
    async with running(settings):
        await wait_for_jobs(api, merchant_id, jobs, timeout_s=20)
        async with asyncio.timeout(10):
            while await outbox_rows():  # noqa: ASYNC110 (polling the database)
                await asyncio.sleep(0.1)
