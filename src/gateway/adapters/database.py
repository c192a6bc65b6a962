"""Async engines for SQLite (aiosqlite) and PostgreSQL (asyncpg). Nothing connects here:
the first connection is made when the engine is first used."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
PING_TIMEOUT_S = 2.0
POOL_SIZE = 20
_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)
_WAL_RETRY_S = 0.005


def create_engine(
    url: str, *, schema: str | None = None, application_name: str | None = None
) -> AsyncEngine:
    """PostgreSQL only: `schema`, every connection works in it through `search_path`;
    `application_name`, what `pg_stat_activity` and the server's logs show for its
    connections (which process of ours holds them)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return _postgres_engine(parsed, schema, application_name)


def _sqlite_engine(url: URL) -> AsyncEngine:
    in_memory = url.database in (None, "", ":memory:")
    pool: dict[str, Any] = {} if in_memory else {"pool_size": 5, "max_overflow": 15}
    engine = create_async_engine(url, **pool)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
    dbapi_connection.run_async(_use_wal)


async def _use_wal(connection: aiosqlite.Connection) -> None:
    """Switch the file to write-ahead logging (it stays so; later switches change nothing).

    On a brand-new file the switch holds the shared lock while it waits for a writer's
    reserved one. When that writer then needs the exclusive lock (to commit, or to switch
    the file itself), each would wait for the other: SQLite answers the switch "database
    is locked" at once, without waiting `busy_timeout`. Two processes migrating a new
    file meet this. The switch lets go and tries again, up to `busy_timeout`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor = await connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or loop.time() >= deadline:
                raise
            await asyncio.sleep(_WAL_RETRY_S)
        else:
            await cursor.close()
            return


def _postgres_engine(url: URL, schema: str | None, application_name: str | None) -> AsyncEngine:
    settings = {"search_path": schema, "application_name": application_name}
    server_settings = {name: value for name, value in settings.items() if value is not None}
    connect_args: dict[str, Any] = {"server_settings": server_settings} if server_settings else {}
    return create_async_engine(
        url,
        # Every connection the pool opens stays open: overflow connections are closed when
        # given back, so under load each checkout past `pool_size` paid for a new server
        # process and prepared every statement again (see docs/performance.md).
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_timeout=30,
        pool_recycle=1800,
        # A connection the server dropped (a restart, a cut) is found at checkout and
        # replaced, so no caller gets an error for it. This costs three round trips per
        # transaction on asyncpg; pinging only idle connections was measured and dropped:
        # after a cut, the first request on a recently used connection got a 503
        # (docs/performance.md). The accept path has a pool of its own without pings.
        pool_pre_ping=True,
        connect_args=connect_args,
    )


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers `SELECT 1` within `PING_TIMEOUT_S`; never raises."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_S), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
