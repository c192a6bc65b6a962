"""Statements on the hot paths, sent straight through asyncpg, beside SQLAlchemy.

SQLAlchemy's pool pings every checkout (three more round trips), and its Core layer
costs more CPU than the statements themselves. Accepting a payment and taking it to the
bank each run one or two prebuilt statements in autocommit on this small pool instead.

A connection the server dropped is closed with every idle one and the statement is tried
once more on a fresh connection (logged as `<event>_retried`). Callers send only statements
for which a second try after a lost answer is safe. When the second try fails as well,
the caller gets a `ConnectionError` (the API answers 503 and Retry-After).
"""

from __future__ import annotations

import asyncio
import functools
import time
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
R = TypeVar("R")
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_log = structlog.get_logger("gateway.database")
# The connection is gone or unusable: lost, closed, terminated by an administrator or a
# server restart (57P01-03, which arrive as an error on the statement itself), or left by
# such an error in a state asyncpg cannot send on (its InternalClientError); or no new one
# could be opened (refused, starting up, no slot left).
_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,
    OSError,
)


# A prepared statement keeps its plan until a table it reads is analyzed again. In a
# database whose tables autovacuum has not analyzed yet (a new one, for its first minute
# or more) the planner takes a small table for ten pages, and a plan made then for a
# batch (a sequential scan rather than ten index lookups) stays while the table grows:
# seen in the bench, the settle scanning every payment. Statements are prepared again
# when they are this old, so their plans follow the tables' size (asyncpg's default: 300).
STATEMENT_LIFETIME_S = 10


async def each_alone_if_refused(
    together: Callable[[Sequence[T]], Awaitable[list[R | BaseException]]],
    batch: Sequence[T],
    event: str,
) -> list[R | BaseException]:
    """`together(batch)`, a shared statement's results; when PostgreSQL refuses the batch,
    each item again on its own, so that a bad one fails only itself (logged as `event`)."""
    try:
        return await together(batch)
    except asyncpg.PostgresError as error:
        if len(batch) == 1:
            return [error]
    _log.warning(event, payments=len(batch))
    results: list[R | BaseException] = []
    for one in batch:
        try:
            results += await together([one])
        except Exception as error:
            results.append(error)
    return results


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
    return [
        value if bind is None else bind(value, _DIALECT)
        for name, bind in _steps(table, "process_bind_param")
        for value in (row[name],)
    ]


def bound_row(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """`row`'s values by column name, bound as `row_values` binds them."""
    return {
        name: value if bind is None else bind(value, _DIALECT)
        for name, bind in _steps(table, "process_bind_param")
        for value in (row[name],)
    }


def bound(table: Table, row: Mapping[str, Any], names: Sequence[str]) -> list[Any]:
    """The values of `names` out of `row`, bound as `row_values` binds them."""
    binders = _binders(table)
    return [
        value if bind is None else bind(value, _DIALECT)
        for name in names
        for value, bind in ((row[name], binders[name]),)
    ]


@functools.cache
def _binders(table: Table) -> dict[str, Callable[[Any, Any], Any] | None]:
    return dict(_steps(table, "process_bind_param"))


@functools.cache
def _steps(table: Table, step: str) -> tuple[tuple[str, Callable[[Any, Any], Any] | None], ...]:
    """Each column's name and, for a decorated type, its `step` (`process_bind_param` or
    `process_result_value`): worked out once per table (walking the columns cost more
    than the values themselves)."""
    decorated = TypeDecorator
    return tuple(
        (column.name, getattr(column.type, step) if isinstance(column.type, decorated) else None)
        for column in table.columns
    )


def loaded(table: Table, record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`table`'s columns out of `record` (named `prefix` + column), as the column types
    read them back (JSON parsed)."""
    row = {}
    for name, read in _steps(table, "process_result_value"):
        value = record[prefix + name]
        row[name] = value if read is None else read(value, _DIALECT)
    return row


# Taken from the engine's connections: the same tables (a schema per test, or the
# operator's setting), and the same name in `pg_stat_activity`.
_SETTINGS = ("search_path", "application_name")
_SETTINGS_SQL = "SELECT " + ", ".join(f"current_setting('{name}')" for name in _SETTINGS)


class DirectPool:
    """A few asyncpg connections of its own, opened on demand, with the search path and
    application name of the engine's connections, so both pools see the same tables and
    an operator sees whose connections they are.

    Statements wait for a connection in the order they came: asyncpg's pool hands a
    returned connection to whoever asks first, and the waiter it woke goes to the back of
    the line, so with more requests than connections a few waited many times longer than
    the rest (accept at 32 connections: p99 3.1-3.4 × p50; in arrival order 1.7-1.8 ×).
    Taking and giving back a connection is a list pop and append: asyncpg's pool spent
    about 120,000 instructions a statement on it (docs/performance.md).

    A connection that failed (lost, or cancelled in the middle of a statement) is never
    given back; one idle for `idle_lifetime_s` is closed."""

    def __init__(
        self, engine: AsyncEngine, *, size: int = POOL_SIZE, idle_lifetime_s: float = 300.0
    ) -> None:
        self._engine = engine
        self._idle_lifetime_s = idle_lifetime_s
        self._idle: list[tuple[float, asyncpg.Connection]] = []  # last used on top
        self._target: tuple[str, dict[str, str]] | None = None  # DSN, settings
        self._opening = asyncio.Lock()
        self._turns = asyncio.Semaphore(size)  # wakes its waiters in the order they came
        self._closing = False

    async def fetchval(self, event: str, sql: str, *arguments: Any) -> Any:
        return await self._retrying(event, lambda connection: connection.fetchval(sql, *arguments))

    async def fetch(self, event: str, sql: str, *arguments: Any) -> list[asyncpg.Record]:
        records: list[asyncpg.Record] = await self._retrying(
            event, lambda connection: connection.fetch(sql, *arguments)
        )
        return records

    async def fetchrow(self, event: str, sql: str, *arguments: Any) -> asyncpg.Record | None:
        record: asyncpg.Record | None = await self._retrying(
            event, lambda connection: connection.fetchrow(sql, *arguments)
        )
        return record

    async def _retrying(self, event: str, call: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self._turns:
            for attempt in range(2):
                connection: asyncpg.Connection | None = None
                try:
                    connection = await self._take()  # may connect: that can fail too
                    result = await call(connection)
                except _CONNECTION_ERRORS as error:
                    if connection is not None:
                        connection.terminate()
                    await self._close_idle()  # a server restart took them all
                    if attempt:
                        raise ConnectionError(f"{event}: the connection failed twice") from error
                    _log.warning(f"{event}_retried", error=type(error).__name__)
                    continue
                except asyncpg.PostgresError:  # the statement failed, the connection is fine
                    if connection is not None:
                        await self._give_back(connection)
                    raise
                except BaseException:  # cancelled mid-statement: its state is unknown
                    if connection is not None:
                        connection.terminate()
                    raise
                await self._give_back(connection)
                return result
        raise AssertionError("unreachable")

    async def _take(self) -> asyncpg.Connection:
        while self._idle:
            _, idle = self._idle.pop()
            if not idle.is_closed():
                return idle
        dsn, settings = await self._where()
        connection: asyncpg.Connection = await asyncpg.connect(
            dsn,
            server_settings=settings,
            max_cached_statement_lifetime=STATEMENT_LIFETIME_S,
        )
        return connection

    async def _give_back(self, connection: asyncpg.Connection) -> None:
        now = time.monotonic()
        if self._closing:
            await _close(connection)
            return
        self._idle.append((now, connection))
        if now - self._idle[0][0] > self._idle_lifetime_s:  # the least recently used
            await _close(self._idle.pop(0)[1])

    async def _where(self) -> tuple[str, dict[str, str]]:
        if self._target is None:
            async with self._opening:
                if self._target is None:
                    async with self._engine.connect() as connection:
                        found = await connection.execute(text(_SETTINGS_SQL))
                        settings = dict(zip(_SETTINGS, found.one(), strict=True))
                    url = self._engine.url.set(drivername="postgresql")
                    self._target = (url.render_as_string(hide_password=False), settings)
        return self._target

    async def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for _, connection in idle:
            await _close(connection)

    async def close(self) -> None:
        """Closes the idle connections, and each busy one when it is given back."""
        self._closing = True
        await self._close_idle()


async def _close(connection: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout=2.0)
    except (TimeoutError, *_CONNECTION_ERRORS):
        connection.terminate()
