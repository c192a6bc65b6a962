"""`gateway worker` and `gateway relay` as real processes: SIGTERM stops them cleanly."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator

import pytest

from gateway import bootstrap
from gateway.adapters.rabbitmq_topology import Topology
from gateway.config import Settings
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
