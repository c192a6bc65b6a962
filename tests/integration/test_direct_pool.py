"""The asyncpg pool of the hot paths, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import bootstrap
from gateway.adapters.postgres_direct import DirectPool
from tests.fixtures.database import PG_TEST_URL
from tests.integration.http_gateway import gateway_settings


async def test_a_statement_waiting_for_a_connection_is_not_overtaken_by_later_ones(
    pg_engine: AsyncEngine,
) -> None:
    """While one statement holds the only connection, another waits; requests keep
    arriving meanwhile, as they do under load. The waiting one goes first."""
    pool = DirectPool(pg_engine, size=1)
    done: list[str] = []

    async def statement(name: str, sql: str = "SELECT 1") -> None:
        await pool.fetchval("turns", sql)
        done.append(name)

    try:
        await statement("warm-up")
        holding = asyncio.create_task(statement("holding", "SELECT pg_sleep(0.2)"))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(statement("waiting"))
        later: list[asyncio.Task[None]] = []
        while not waiting.done() and len(later) < 5_000:
            later.append(asyncio.create_task(statement("later")))
            await asyncio.sleep(0)
        await asyncio.gather(holding, waiting, *later)
    finally:
        await pool.close()

    assert done[:3] == ["warm-up", "holding", "waiting"], done[:10]
    assert len(done) == 3 + len(later)


async def test_a_new_connection_that_cannot_be_opened_is_a_connection_error(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dropped the pool's connection and is still starting up when the
    statement is tried again on a new one: the caller gets a `ConnectionError` (503)."""
    pool = DirectPool(pg_engine, size=1)
    try:
        pid = await pool.fetchval("test", "SELECT pg_backend_pid()")
        async with pg_engine.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.1)

        async def starting_up(*_args: object, **_kwargs: object) -> asyncpg.Connection:
            raise asyncpg.CannotConnectNowError("the database system is starting up")

        monkeypatch.setattr(asyncpg, "connect", starting_up)
        with pytest.raises(ConnectionError):
            await pool.fetchval("test", "SELECT 1")

        monkeypatch.undo()  # started: the next statement opens a connection and runs
        assert await pool.fetchval("test", "SELECT 1") == 1
    finally:
        await pool.close()


async def test_a_process_names_its_connections_on_both_pools(tmp_path: Path) -> None:
    """`pg_stat_activity` shows an operator which process holds a connection."""
    container = bootstrap.build(gateway_settings(tmp_path, database_url=PG_TEST_URL), "worker")
    sql = "SELECT current_setting('application_name')"
    try:
        async with container.engine().connect() as connection:
            through_engine = await connection.scalar(text(sql))
        through_direct_pool = await container.direct_pool().fetchval("test", sql)
    finally:
        await container.direct_pool().close()
        await container.engine().dispose()

    assert through_engine == through_direct_pool == "gateway-worker"
