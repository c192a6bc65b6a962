"""The PostgreSQL pool: idle connections are pinged at checkout, busy ones are not, and a
connection the server dropped costs at most one failed statement."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters import database

PID = text("SELECT pg_backend_pid()")


async def pooled_connection_killed(engine: AsyncEngine) -> int:
    """Opens two connections, gives both back (the victim first: the pool hands it out
    next), and has the second terminate the first on the server. Returns the victim's pid."""
    async with engine.connect() as victim:
        pid = int(await victim.scalar(PID) or 0)
        async with engine.connect() as killer:
            await killer.scalar(PID)
    async with engine.connect() as killer:
        assert await killer.scalar(PID) != pid, "the pool is first in, first out"
        await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await killer.commit()
    return pid


async def test_an_idle_connection_the_server_dropped_is_replaced_unnoticed(
    pg_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await pooled_connection_killed(pg_engine)
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 0.0)  # every pooled one is idle

    async with pg_engine.connect() as connection:
        assert await connection.scalar(PID) not in (0, pid)


async def test_a_busy_connection_the_server_dropped_fails_once_then_the_pool_recovers(
    pg_engine: AsyncEngine,
) -> None:
    pid = await pooled_connection_killed(pg_engine)  # given back just now: no ping

    with pytest.raises(DBAPIError) as failure:
        async with pg_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    assert failure.value.connection_invalidated

    async with pg_engine.connect() as connection:
        assert await connection.scalar(PID) not in (0, pid)
