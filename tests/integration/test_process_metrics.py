"""`gateway relay` and `gateway worker` as real processes serve Prometheus metrics on
`GATEWAY_METRICS_PORT`: what operators scrape for the outbox and the dead letters."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway.adapters.rabbitmq_topology import Topology
from tests.fixtures.database import drop_pg_database, new_pg_database, pg_database_url
from tests.fixtures.processes import Processes, free_port
from tests.fixtures.rabbitmq import AMQP_URL, delete_topology

pytestmark = pytest.mark.e2e


@pytest.fixture
def production(processes: Processes) -> Iterator[Processes]:
    database = asyncio.run(new_pg_database())
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    processes.env |= {
        "GATEWAY_DATABASE_URL": pg_database_url(database),
        "GATEWAY_BROKER_URL": AMQP_URL,
        "GATEWAY_QUEUE_PREFIX": prefix,
        "GATEWAY_CARD_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    }
    try:
        assert processes.run("migrate").returncode == 0
        yield processes
    finally:
        processes.stop_all()
        asyncio.run(drop_pg_database(database))
        asyncio.run(delete_topology(Topology(prefix)))


def scrape(port: int, metric: str, within_s: float = 20) -> str:
    """The first line of `metric` on that port, once the process serves it."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        lines = [line for line in text.splitlines() if line.startswith(metric + " ")]
        if lines:
            return lines[0]
        time.sleep(0.1)
    raise AssertionError(f"{metric} not served on :{port} within {within_s}s")


def test_relay_and_worker_serve_their_metrics_on_the_configured_port(
    production: Processes,
) -> None:
    relay_port, worker_port = free_port(), free_port()
    production.start("relay", "relay", env={"GATEWAY_METRICS_PORT": str(relay_port)})
    production.start("worker", "worker", env={"GATEWAY_METRICS_PORT": str(worker_port)})

    assert scrape(relay_port, "gateway_outbox_backlog") == "gateway_outbox_backlog 0.0"
    assert scrape(worker_port, "gateway_dead_letter_depth") == "gateway_dead_letter_depth 0.0"
