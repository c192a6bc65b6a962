"""The transactional outbox: written inside a unit of work, claimed by the relay.

A claim keeps its transaction open until the context exits. On PostgreSQL the rows are
taken `FOR UPDATE SKIP LOCKED`, so concurrent relays never claim the same row. On SQLite
(one relay per process) the claim only reads, and `mark_sent()` takes the write lock, so a
handler run inside the claim can still write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.ids import TimeOrderedIds, id_at
from gateway.adapters.orm import outbox
from gateway.application.ports import OutboxMessage
from gateway.domain.commands import DeliverWebhook, MakePayment

if TYPE_CHECKING:
    from gateway.adapters.unit_of_work import Transaction

_ids = TimeOrderedIds()
MESSAGE_PREFIX = "msg"


class SqlOutbox:
    """The unit of work's side: rows are inserted with the rest at commit."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, command: MakePayment | DeliverWebhook) -> None:
        row = outbox_row(command)
        self._tx.buffer(outbox, row["id"], row)


def outbox_row(command: MakePayment | DeliverWebhook) -> dict[str, Any]:
    """A new, unsent outbox row for `command`."""
    return {
        "id": _ids.new(MESSAGE_PREFIX),
        "kind": type(command).__name__,
        "payload": outbox_payload(command),
        "created_at": datetime.now(UTC),
        "sent_at": None,
    }


def outbox_payload(command: MakePayment | DeliverWebhook) -> dict[str, str]:
    if isinstance(command, DeliverWebhook):
        return {"delivery_id": command.delivery_id, "attempt": str(command.attempt)}
    return {
        "payment_id": command.payment_id,
        "job_id": command.job_id,
        "merchant_id": command.merchant_id,
    }


class _Batch:
    def __init__(
        self,
        connection: AsyncConnection,
        messages: Sequence[OutboxMessage],
        write_lock: asyncio.Lock | None,
    ) -> None:
        self._connection = connection
        self._messages = messages
        self._write_lock = write_lock

    @property
    def messages(self) -> Sequence[OutboxMessage]:
        return self._messages

    async def mark_sent(self) -> None:
        async with _holding(self._write_lock):
            ids = [message.id for message in self._messages]
            if ids:
                await self._connection.execute(
                    update(outbox).where(outbox.c.id.in_(ids)).values(sent_at=datetime.now(UTC))
                )
            await self._connection.commit()


class SqlOutboxStore:
    """The relay's side. `write_lock`: the process-wide SQLite write lock (ignored on
    PostgreSQL), the same one the units of work share."""

    def __init__(self, engine: AsyncEngine, write_lock: asyncio.Lock | None = None) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = write_lock if self._sqlite else None

    @asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[_Batch]:
        query = select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(limit)
        if not self._sqlite:
            query = query.with_for_update(skip_locked=True)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
            messages = [
                OutboxMessage(row["id"], row["kind"], dict(row["payload"]), row["created_at"])
                for row in rows
            ]
            try:
                yield _Batch(connection, messages, self._write_lock)
            finally:
                if connection.in_transaction():
                    await connection.rollback()

    async def backlog(self) -> tuple[int, float]:
        """How many rows are unsent, and the age in seconds of the oldest (0.0 if none)."""
        query = select(func.count(), func.min(outbox.c.created_at)).where(
            outbox.c.sent_at.is_(None)
        )
        async with self._engine.connect() as connection:
            count, oldest = (await connection.execute(query)).one()
        if oldest is None:
            return 0, 0.0
        return count, max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    async def purge_sent(self, older_than: timedelta) -> int:
        """Deletes sent rows written more than `older_than` ago; returns how many.

        Ids are time-ordered, so "written before the cutoff" is a range of the primary
        key: only the old rows are visited, however many recent ones the table holds
        (`sent_at` has no index: it would cost every `mark_sent`)."""
        cutoff = datetime.now(UTC) - older_than
        before = id_at(MESSAGE_PREFIX, cutoff)
        async with _holding(self._write_lock), self._engine.begin() as connection:
            result = await connection.execute(
                delete(outbox).where(outbox.c.id < before, outbox.c.sent_at.is_not(None))
            )
        return result.rowcount


@asynccontextmanager
async def _holding(lock: asyncio.Lock | None) -> AsyncIterator[None]:
    if lock is None:
        yield
        return
    async with lock:
        yield
