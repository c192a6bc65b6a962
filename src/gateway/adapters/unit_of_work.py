"""The SQL unit of work: one connection and one transaction per `async with`.

Rows added to repositories are buffered and inserted at `commit()`; leaving without
`commit()` rolls back. The same object may be entered again later for a new transaction.

SQLite has one writer at a time. With a `write_lock` shared by every unit of work of the
process, a transaction waits for the lock before its first write (a `save`, a `delete`,
a `get(..., for_update=True)` or the inserts at commit) and holds it until it commits or
rolls back, so concurrent coroutines never meet "database is locked"; other processes
are waited for through `busy_timeout`. Never open a second unit of work while one holds
the lock. The lock is ignored on PostgreSQL, which locks rows instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Self

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.bank_outcomes import SqlBankCallbacks, SqlPendingPayments
from gateway.adapters.orm import bank_callbacks, idempotency_keys, metadata
from gateway.adapters.outbox import SqlOutbox
from gateway.adapters.repository import (
    Row,
    SqlCards,
    SqlIdempotencyRecords,
    SqlJobs,
    SqlMerchants,
    SqlPayments,
)
from gateway.adapters.webhook_repository import (
    SqlDeliveries,
    SqlMerchantEvents,
    SqlWebhookEndpoints,
)
from gateway.application.ports import CommitConflict


class Transaction:
    """The connection of one unit of work, its buffered inserts and its hold on the
    write lock, taken before the first write and kept to the end of the transaction."""

    def __init__(self, connection: AsyncConnection, write_lock: asyncio.Lock | None) -> None:
        self.connection = connection
        self._write_lock = write_lock
        self._holds_lock = False
        self._pending: dict[Table, dict[Hashable, Row]] = {}

    def buffer(self, table: Table, key: Hashable, row: Row) -> None:
        self._pending.setdefault(table, {})[key] = row

    def pending(self, table: Table, key: Hashable) -> Row | None:
        return self._pending.get(table, {}).get(key)

    def unbuffer(self, table: Table, key: Hashable) -> bool:
        return self._pending.get(table, {}).pop(key, None) is not None

    async def writing(self) -> AsyncConnection:
        """The connection, once this transaction may write."""
        if self._write_lock is not None and not self._holds_lock:
            await self._write_lock.acquire()
            self._holds_lock = True
        return self.connection

    async def flush(self) -> None:
        """Inserts the buffered rows, parents first, one statement per table."""
        if not any(self._pending.values()):
            return
        connection = await self.writing()
        for table in metadata.sorted_tables:
            rows = list(self._pending.pop(table, {}).values())
            if not rows:
                continue
            try:
                await connection.execute(table.insert(), rows)
            except IntegrityError as error:
                if table is idempotency_keys:
                    raise CommitConflict("idempotency key taken by another request") from error
                if table is bank_callbacks:
                    raise CommitConflict("bank event recorded by another request") from error
                raise

    def release(self) -> None:
        """Drops what is buffered and lets the next writer in."""
        self._pending.clear()
        if self._holds_lock:
            self._holds_lock = False
            assert self._write_lock is not None
            self._write_lock.release()


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine, write_lock: asyncio.Lock | None = None) -> None:
        self._engine = engine
        self._write_lock = write_lock if engine.dialect.name == "sqlite" else None
        self._tx: Transaction | None = None

    @property
    def payments(self) -> SqlPayments:
        return SqlPayments(self._open())

    @property
    def jobs(self) -> SqlJobs:
        return SqlJobs(self._open())

    @property
    def cards(self) -> SqlCards:
        return SqlCards(self._open())

    @property
    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self._open())

    @property
    def idempotency(self) -> SqlIdempotencyRecords:
        return SqlIdempotencyRecords(self._open())

    @property
    def merchants(self) -> SqlMerchants:
        return SqlMerchants(self._open())

    @property
    def pending_payments(self) -> SqlPendingPayments:
        return SqlPendingPayments(self._open())

    @property
    def bank_callbacks(self) -> SqlBankCallbacks:
        return SqlBankCallbacks(self._open())

    @property
    def webhook_endpoints(self) -> SqlWebhookEndpoints:
        return SqlWebhookEndpoints(self._open())

    @property
    def events(self) -> SqlMerchantEvents:
        return SqlMerchantEvents(self._open())

    @property
    def deliveries(self) -> SqlDeliveries:
        return SqlDeliveries(self._open())

    async def __aenter__(self) -> Self:
        if self._tx is not None:
            raise RuntimeError("this unit of work is already in a transaction")
        self._tx = Transaction(await self._engine.connect(), self._write_lock)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tx, self._tx = self._open(), None
        try:
            if tx.connection.in_transaction():
                await tx.connection.rollback()
        finally:
            tx.release()
            await tx.connection.close()

    async def commit(self) -> None:
        """On failure the transaction stays open (and locked) until the exit rolls it back."""
        tx = self._open()
        await tx.flush()
        await tx.connection.commit()
        tx.release()

    def _open(self) -> Transaction:
        if self._tx is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return self._tx
