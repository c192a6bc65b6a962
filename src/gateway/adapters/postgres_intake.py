"""Accepting a payment on PostgreSQL in one statement, one round trip.

The five rows go in with one `INSERT … ON CONFLICT DO NOTHING` on the idempotency key
and data-modifying CTEs that insert the payment, job, sealed card and outbox row only
when that insert took the key. One statement is one transaction: all five rows or none,
without BEGIN and COMMIT round trips. When the key was taken, by an earlier request or
a concurrent one (PostgreSQL makes the second wait for the first to commit), a second
statement reads the record it holds.

The statement runs on a small asyncpg pool of its own: SQLAlchemy's pool pings every
checkout (three more round trips), and the Core layer costs more CPU than the statement.
The rows come from the same mapping functions the SQLAlchemy repositories use, so both
paths store the same thing. A connection the server dropped expires the whole pool and
the statement is tried once more on a fresh connection: that is safe, because the
idempotency key makes a second try of a committed first one a no-op that finds its own
record.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from sqlalchemy import BigInteger, Integer, LargeBinary, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.ids import TimeOrderedIds
from gateway.adapters.orm import (
    JsonText,
    UtcDateTime,
    card_data,
    idempotency_keys,
    jobs,
    outbox,
    payments,
)
from gateway.adapters.outbox import MESSAGE_PREFIX, outbox_payload
from gateway.adapters.repository import job_row, payment_row
from gateway.application.ports import IdempotencyRecord, NewPayment, UnitOfWork

POOL_SIZE = 10
_log = structlog.get_logger("gateway.intake")
_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    OSError,
)


def _cast(table: Table, column: str) -> str:
    kind = table.c[column].type
    if isinstance(kind, JsonText):
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


class _Statement:
    """`WITH key AS (INSERT … ON CONFLICT DO NOTHING RETURNING …), payment AS (INSERT …
    SELECT … FROM key …), … SELECT count(*) FROM key`, its parameters numbered in the
    order of `columns`."""

    def __init__(self) -> None:
        self.columns: list[tuple[Table, str]] = []
        key_insert = self._insert(idempotency_keys, source=None)
        parts = [
            f"taken AS ({key_insert} ON CONFLICT (merchant_id, key) DO NOTHING RETURNING 1)",
            f"p AS ({self._insert(payments, source='taken')} RETURNING 1)",
            f"j AS ({self._insert(jobs, source='p')})",
            f"c AS ({self._insert(card_data, source='p')})",
            f"o AS ({self._insert(outbox, source='p')})",
        ]
        # Built once from the table definitions; every value is a numbered parameter.
        self.sql = "WITH " + ", ".join(parts) + " SELECT count(*) FROM taken"  # noqa: S608
        self.json_positions = tuple(
            position
            for position, (table, name) in enumerate(self.columns)
            if isinstance(table.c[name].type, JsonText)
        )

    def _insert(self, table: Table, source: str | None) -> str:
        names = [column.name for column in table.columns]
        values = []
        for name in names:
            self.columns.append((table, name))
            values.append(f"${len(self.columns)}::{_cast(table, name)}")
        head = f"INSERT INTO {table.name} ({', '.join(names)}) "
        if source is None:
            return head + f"VALUES ({', '.join(values)})"
        return head + f"SELECT {', '.join(values)} FROM {source}"  # noqa: S608

    def arguments(self, rows: Mapping[Table, Mapping[str, Any]]) -> list[Any]:
        values = [rows[table][name] for table, name in self.columns]
        for position in self.json_positions:
            values[position] = json.dumps(
                dict(values[position]), separators=(",", ":"), sort_keys=True
            )
        return values


_ACCEPT = _Statement()
_PREVIOUS = (
    "SELECT merchant_id, key, fingerprint, job_id, payment_id, created_at"
    " FROM idempotency_keys WHERE merchant_id = $1 AND key = $2"
)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Connections of this pool only ever run the two statements above, in autocommit:
    there is no session state to reset when one is given back (asyncpg would otherwise
    spend a round trip on `RESET ALL` and friends at every release)."""


class PostgresIntake:
    def __init__(self, engine: AsyncEngine, *, pool_size: int = POOL_SIZE) -> None:
        self._engine = engine
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._ids = TimeOrderedIds()

    async def accept(self, new: NewPayment, uow: UnitOfWork) -> IdempotencyRecord | None:
        arguments = _ACCEPT.arguments(self._rows(new))
        record = new.idempotency
        for attempt in range(2):
            pool = await self._open()
            try:
                async with pool.acquire() as connection:
                    if await connection.fetchval(_ACCEPT.sql, *arguments):
                        return None
                    found = await connection.fetchrow(_PREVIOUS, record.merchant_id, record.key)
            except _CONNECTION_ERRORS as error:
                pool.expire_connections()
                if attempt:
                    raise
                _log.warning("accept_retried", error=type(error).__name__)
                continue
            if found is None:  # taken, then gone: never deleted, so not expected
                raise RuntimeError("idempotency record vanished")
            previous = IdempotencyRecord(**dict(found))
            # Our own first try committed before its answer was lost: not a replay.
            return None if previous.job_id == new.job.id else previous
        raise AssertionError("unreachable")

    def _rows(self, new: NewPayment) -> dict[Table, Mapping[str, Any]]:
        now = new.payment.created_at
        return {
            idempotency_keys: {
                "merchant_id": new.idempotency.merchant_id,
                "key": new.idempotency.key,
                "fingerprint": new.idempotency.fingerprint,
                "job_id": new.idempotency.job_id,
                "payment_id": new.idempotency.payment_id,
                "created_at": new.idempotency.created_at,
            },
            payments: payment_row(new.payment),
            jobs: job_row(new.job),
            card_data: {"payment_id": new.payment.id, "sealed": new.sealed_card, "created_at": now},
            outbox: {
                "id": self._ids.new(MESSAGE_PREFIX),
                "kind": type(new.command).__name__,
                "payload": outbox_payload(new.command),
                "created_at": now,
                "sent_at": None,
            },
        }

    async def _open(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await self._create_pool()
        return self._pool

    async def _create_pool(self) -> asyncpg.Pool:
        # The search path of the engine's own connections (a schema per test, or the
        # operator's setting), so both pools see the same tables.
        async with self._engine.connect() as connection:
            search_path = await connection.scalar(text("SHOW search_path"))
        url = self._engine.url.set(drivername="postgresql")
        return await asyncpg.create_pool(
            url.render_as_string(hide_password=False),
            min_size=1,
            max_size=self._pool_size,
            max_inactive_connection_lifetime=300.0,
            server_settings={"search_path": str(search_path)},
            reset=_keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
