"""The fault suite: real processes, a private RabbitMQ node, a PostgreSQL database per scenario.

Every test here is marked `faults`: left out of the parallel run and run serially
(`make faults`). Each scenario records a row (see `results.py`). The databases, the
broker messages captured by a queue bound next to the gateway's, and the process logs
are kept until the card-data scan (`test_m_card_data.py`, always run last), then dropped.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aio_pika
import pytest

from gateway.adapters.rabbitmq_topology import MAKE_PAYMENT
from tests.faults.results import RESULTS, Recorder, Row
from tests.faults.scan import Evidence
from tests.fixtures.database import drop_pg_database, new_pg_database
from tests.fixtures.faults import PrivateRabbit, Stack
from tests.fixtures.processes import Processes

HERE = Path(__file__).parent
SCAN = HERE / "test_m_card_data.py"
LOGS = RESULTS.parent / "logs"
PASSED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the suite `faults`; it only runs when asked for by name (`-m faults`) and
    never under xdist: it owns a RabbitMQ node and injects faults into shared services."""
    wanted = "faults" in (config.option.markexpr or "")
    parallel = hasattr(config, "workerinput") or (config.getoption("numprocesses", None) or 0)
    skip = pytest.mark.skip(reason="the fault suite runs serially: `make faults` (-m faults)")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.faults)
            if not wanted or parallel:
                item.add_marker(skip)
    items.sort(key=lambda item: item.path == SCAN)  # the scan needs every scenario's evidence


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[PASSED] = report.passed
    return report


@pytest.fixture(scope="session")
def evidence(private_rabbitmq: PrivateRabbit) -> Iterator[Evidence]:
    found = Evidence(private_rabbitmq.url)
    yield found
    for database in found.databases:
        asyncio.run(drop_pg_database(database))


@pytest.fixture(scope="session")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def record(request: pytest.FixtureRequest, recorder: Recorder) -> Iterator[Callable[..., Row]]:
    """`record(scenario, title, load=…, faults=…)` → the row this test fills in."""
    rows: list[tuple[Row, float]] = []

    def new_row(scenario: str, title: str, *, load: str, faults: str) -> Row:
        row = Row(scenario, title, load, faults)
        rows.append((row, time.monotonic()))
        return row

    yield new_row
    for row, started in rows:
        row.duration_s = round(time.monotonic() - started, 1)
        row.passed = request.node.stash.get(PASSED, False)
        recorder.add(row)


@pytest.fixture(scope="session")
def logs_dir() -> Path:
    """`.reliability/logs/<test>/`: the process logs of the last run, kept for reading."""
    shutil.rmtree(LOGS, ignore_errors=True)
    return LOGS


@pytest.fixture
def processes(request: pytest.FixtureRequest, logs_dir: Path) -> Iterator[Processes]:
    """Like the shared fixture, but the logs live outside pytest's rotating temp dirs."""
    workdir = logs_dir / request.node.name
    workdir.mkdir(parents=True)
    group = Processes(workdir)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
def stack(processes: Processes, evidence: Evidence) -> Iterator[Stack]:
    """A production stack on the private broker; its database and logs become evidence."""
    database = asyncio.run(new_pg_database())
    evidence.databases.append(database)
    stack = Stack(processes, database, evidence.broker_url, prefix=f"faults-{uuid.uuid4().hex[:8]}")
    evidence.captures.append(asyncio.run(capture(evidence.broker_url, stack.prefix)))
    try:
        yield stack
    finally:
        stack.stop()
        evidence.logs += [process.log for process in processes.started]


async def capture(broker_url: str, prefix: str) -> str:
    """A queue bound to the gateway's exchange next to its own: a copy of every message."""
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            prefix, aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = await channel.declare_queue(f"{prefix}.capture", durable=True)
        await queue.bind(exchange, MAKE_PAYMENT)
    return queue.name
