"""`gateway worker` and `gateway relay` as real processes: SIGTERM stops them cleanly."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from gateway import bootstrap
from gateway.adapters.orm import jobs, outbox
from gateway.adapters.rabbitmq_topology import Topology
from gateway.config import Settings
from gateway.domain.commands import CreateMerchant, RequestPayment
from gateway.domain.result import Ok
from tests.fixtures.database import drop_pg_database, new_pg_database, pg_database_url
from tests.fixtures.processes import Process, Processes
from tests.fixtures.rabbitmq import AMQP_URL


@pytest.fixture
async def env(topology: Topology) -> AsyncIterator[dict[str, str]]:
    database = await new_pg_database()
    url = pg_database_url(database)
    container = bootstrap.build(Settings(database_url=url))
    await bootstrap.migrate_database(container)
    await container.engine().dispose()
    yield {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_BROKER_URL": AMQP_URL,
        "GATEWAY_QUEUE_PREFIX": topology.prefix,
        "GATEWAY_CARD_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    await drop_pg_database(database)


def wait_for_line(process: Process, text: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in process.output():
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} from {process.name}:\n{process.output()[-3000:]}")
        time.sleep(0.1)


@pytest.mark.e2e
@pytest.mark.parametrize(("command", "started", "stopped"), [
    ("worker", "worker_started", "worker_stopped"),
    ("relay", "relay_started", "relay_stopped"),
])  # fmt: skip
def test_sigterm_stops_the_process_cleanly(
    processes: Processes, env: dict[str, str], command: str, started: str, stopped: str
) -> None:
    process = processes.start(command, command, env=env)
    wait_for_line(process, started)

    assert process.stop(timeout=15) == 0
    assert stopped in process.output()


@pytest.mark.e2e
async def test_sigterm_lets_the_payments_in_flight_finish_before_the_worker_exits(
    processes: Processes, env: dict[str, str]
) -> None:
    settings = Settings.from_env(env)
    api = bootstrap.build(settings)
    mediator = api.mediator()
    merchant = await mediator.send(CreateMerchant("Acme"))
    job_ids = []
    for n in range(20):
        body = {"amount": 1050, "currency": "GBP", "card": CARD}
        accepted = await mediator.send(RequestPayment(merchant.merchant_id, f"k-{n}", body))
        assert isinstance(accepted, Ok)
        job_ids.append(accepted.value.job.id)
    slow_bank = {**env, "GATEWAY_BANK_LATENCY_MS": "1500"}
    processes.start("relay", "relay", env=env)
    worker = processes.start("worker", "worker", env=slow_bank)
    wait_for_line(worker, "worker_started")
    async with asyncio.timeout(10):
        while await unsent(api):  # noqa: ASYNC110 (polling the database)
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # delivered, and now waiting for the bank

    stopping = time.monotonic()
    assert worker.stop(timeout=15) == 0
    waited_s = time.monotonic() - stopping
    statuses = await job_statuses(api, job_ids)
    await api.engine().dispose()

    assert statuses == ["completed"] * 20, worker.output()[-2000:]
    assert waited_s > 0.8, "the bank calls were in flight: stopping waited for them"
    assert '"deliveries_returned"' not in worker.output()


CARD = {"number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "123"}


async def unsent(container: bootstrap.Container) -> int:
    async with container.engine().connect() as connection:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(await connection.scalar(query) or 0)


async def job_statuses(container: bootstrap.Container, job_ids: list[str]) -> list[str]:
    async with container.engine().connect() as connection:
        rows = await connection.execute(select(jobs.c.id, jobs.c.status))
        by_id = dict(rows.all())
    return [by_id[job_id] for job_id in job_ids]
