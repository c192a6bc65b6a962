"""The PostgreSQL pool: a connection the server dropped is found at checkout and replaced
before any statement fails on it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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


async def test_a_pooled_connection_the_server_dropped_is_replaced_unnoticed(
    pg_engine: AsyncEngine,
) -> None:
    pid = await pooled_connection_killed(pg_engine)

    async with pg_engine.connect() as connection:
        assert await connection.scalar(PID) not in (0, pid)
