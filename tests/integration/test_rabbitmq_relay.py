"""The outbox relay on PostgreSQL publishing to the real broker."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.outbox import SqlOutboxStore
from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_topology import Topology
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.application.relay import Relay
from gateway.domain.commands import MakePayment
from tests.fixtures.rabbitmq import TcpProxy, drain, eventually


async def enqueue(engine: AsyncEngine, how_many: int, per_commit: int = 100) -> None:
    for start in range(0, how_many, per_commit):
        async with SqlUnitOfWork(engine) as uow:
            for n in range(start, min(how_many, start + per_commit)):
                uow.outbox.add(MakePayment(f"pay_{n}", f"job_{n}", "mer_1"))
            await uow.commit()


async def run_until_drained(store: SqlOutboxStore, *relays: Relay, timeout_s: float = 30) -> None:
    stop = asyncio.Event()
    running = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        await drained(store, timeout_s)
    finally:
        stop.set()
        await asyncio.gather(*running)


async def drained(store: SqlOutboxStore, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while (await store.backlog())[0] > 0:  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.05)


async def test_two_relays_publish_every_row_once_and_mark_all_sent(
    pg_engine: AsyncEngine, broker: RabbitBroker, topology: Topology
) -> None:
    await enqueue(pg_engine, 1000)
    store = SqlOutboxStore(pg_engine)
    relays = [Relay(SqlOutboxStore(pg_engine), broker.publisher(), batch_size=50) for _ in "ab"]

    await run_until_drained(store, *relays)

    received = await drain(topology.queue, 1000)
    ids = [m.message_id for m in received]
    assert len(ids) == 1000
    assert len(set(ids)) == 1000  # published once each
    assert await drain(topology.queue, 1, timeout_s=0.3) == []
    assert await store.backlog() == (0, 0.0)
    assert all(relay.published > 0 for relay in relays)  # both took part
    assert sum(relay.published for relay in relays) == 1000


async def test_relay_keeps_rows_unsent_while_the_broker_is_away_and_catches_up(
    pg_engine: AsyncEngine, topology: Topology, tcp_proxy: TcpProxy
) -> None:
    broker = RabbitBroker(tcp_proxy.url, topology, reconnect_interval_s=0.2)
    await broker.connect(retry=False)
    store = SqlOutboxStore(pg_engine)
    failures: list[float] = []
    relay = Relay(store, broker.publisher(), on_error=lambda _, delay: failures.append(delay))
    await tcp_proxy.stop()
    tcp_proxy.cut()
    await eventually(lambda: not broker.is_connected)
    await enqueue(pg_engine, 20)

    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(1.5)
    assert (await store.backlog())[0] == 20
    assert 2 <= len(failures) <= 8  # backing off, not spinning

    await tcp_proxy.start()
    try:
        await drained(store, 15)
    finally:
        stop.set()
        await running
        await broker.close()
    assert len(await drain(topology.queue, 20)) == 20
