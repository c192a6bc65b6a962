"""Statements on the hot paths, sent straight through asyncpg, beside SQLAlchemy.

SQLAlchemy's pool pings every checkout (three more round trips), and its Core layer
costs more CPU than the statements themselves. Accepting a payment and taking it to the
bank each run one or two prebuilt statements in autocommit on this small pool instead.

A connection the server dropped expires the whole pool and the statement is tried once
more on a fresh connection (logged as `<event>_retried`). Callers send only statements
for which a second try after a lost answer is safe. When the second try fails as well,
the caller gets a `ConnectionError` (the API answers 503 and Retry-After).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
import structlog
from sqlalchemy import BigInteger, Integer, LargeBinary, Table, TypeDecorator, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.orm import JsonDocument, JsonText, UtcDateTime

POOL_SIZE = 10
T = TypeVar("T")
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_log = structlog.get_logger("gateway.database")
# The connection is gone or unusable: lost, closed, terminated by an administrator or a
# server restart (57P01-03, which arrive as an error on the statement itself), or left by
# such an error in a state asyncpg cannot send on (its InternalClientError).
_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,
    OSError,
)


def cast(table: Table, column: str) -> str:
    """The PostgreSQL type a parameter for `table.column` is sent as."""
    kind = table.c[column].type
    if isinstance(kind, JsonText | JsonDocument):
        return "text"
    if isinstance(kind, BigInteger):
        return "bigint"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, LargeBinary):
        return "bytea"
    if isinstance(kind, UtcDateTime):
        return "timestamptz"
    return "text"


def columns(table: Table) -> Sequence[str]:
    return [column.name for column in table.columns]


def row_values(table: Table, row: Mapping[str, Any]) -> list[Any]:
    """`row`'s values in column order, as the column types bind them (JSON as text, and
    timestamps checked to be aware)."""
    values = []
    for column in table.columns:
        value = row[column.name]
        if isinstance(column.type, TypeDecorator):
            value = column.type.process_bind_param(value, _DIALECT)
        values.append(value)
    return values


def loaded(table: Table, record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`table`'s columns out of `record` (named `prefix` + column), as the column types
    read them back (JSON parsed)."""
    row = {}
    for column in table.columns:
        value = record[prefix + column.name]
        if isinstance(column.type, TypeDecorator):
            value = column.type.process_result_value(value, _DIALECT)
        row[column.name] = value
    return row


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Connections of this pool only ever run single statements in autocommit: there is
    no session state to reset when one is given back (asyncpg would otherwise spend a
    round trip on `RESET ALL` and friends at every release)."""


class DirectPool:
    """Opened on first use, with the search path of the engine's own connections (a
    schema per test, or the operator's setting), so both pools see the same tables.

    Statements wait for a connection in the order they came: asyncpg's pool hands a
    returned connection to whoever asks first, and the waiter it woke goes to the back of
    the line, so with more requests than connections a few waited many times longer than
    the rest (accept at 32 connections: p99 3.1-3.4 × p50; in arrival order 1.7-1.8 ×,
    docs/performance.md)."""

    def __init__(self, engine: AsyncEngine, *, size: int = POOL_SIZE) -> None:
        self._engine = engine
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._turns = asyncio.Semaphore(size)  # wakes its waiters in the order they came

    async def fetchval(self, event: str, sql: str, *arguments: Any) -> Any:
        return await self._retrying(event, lambda pool: pool.fetchval(sql, *arguments))

    async def fetchrow(self, event: str, sql: str, *arguments: Any) -> asyncpg.Record | None:
        record: asyncpg.Record | None = await self._retrying(
            event, lambda pool: pool.fetchrow(sql, *arguments)
        )
        return record

    async def _retrying(self, event: str, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        async with self._turns:
            return await self._tried_twice(event, call)

    async def _tried_twice(self, event: str, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        for attempt in range(2):
            pool = await self._open()
            try:
                return await call(pool)
            except _CONNECTION_ERRORS as error:
                await pool.expire_connections()
                if attempt:
                    raise ConnectionError(f"{event}: the connection failed twice") from error
                _log.warning(f"{event}_retried", error=type(error).__name__)
        raise AssertionError("unreachable")

    async def _open(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await self._create()
        return self._pool

    async def _create(self) -> asyncpg.Pool:
        async with self._engine.connect() as connection:
            search_path = await connection.scalar(text("SHOW search_path"))
        url = self._engine.url.set(drivername="postgresql")
        return await asyncpg.create_pool(
            url.render_as_string(hide_password=False),
            min_size=1,
            max_size=self._size,
            max_inactive_connection_lifetime=300.0,
            server_settings={"search_path": str(search_path)},
            reset=_keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
