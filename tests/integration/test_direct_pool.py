"""The asyncpg pool of the hot paths, on a real PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.postgres_direct import DirectPool


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
