"""Repositories of the asynchronous bank outcomes: pending payments and bank callbacks.

Same rules as `repository.py`: `add()` buffers a row for the commit, reads happen now,
other writes happen now once the transaction may write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, select, update

from gateway.adapters.orm import bank_callbacks, pending_payments
from gateway.application.ports import BankCallbackRecord, PendingPayment

if TYPE_CHECKING:
    from gateway.adapters.unit_of_work import Transaction


class SqlPendingPayments:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, pending: PendingPayment) -> None:
        self._tx.buffer(pending_payments, pending.payment_id, asdict(pending))

    async def get(self, payment_id: str) -> PendingPayment | None:
        if (row := self._tx.pending(pending_payments, payment_id)) is not None:
            return PendingPayment(**row)
        query = select(pending_payments).where(pending_payments.c.payment_id == payment_id)
        found = (await self._tx.connection.execute(query)).mappings().first()
        return PendingPayment(**found) if found else None

    async def reschedule(self, payment_id: str, next_lookup_at: datetime, lookups: int) -> None:
        changes = {"next_lookup_at": next_lookup_at, "lookups": lookups}
        if (row := self._tx.pending(pending_payments, payment_id)) is not None:
            row.update(changes)
            return
        connection = await self._tx.writing()
        where = pending_payments.c.payment_id == payment_id
        await connection.execute(update(pending_payments).where(where), changes)

    async def delete(self, payment_id: str) -> None:
        if self._tx.unbuffer(pending_payments, payment_id):
            return
        connection = await self._tx.writing()
        where = pending_payments.c.payment_id == payment_id
        await connection.execute(delete(pending_payments).where(where))

    async def claim_due(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> Sequence[PendingPayment]:
        """Locks the due rows, skipping those another claimer holds (PostgreSQL), and moves
        them to `lease_until`; on SQLite the process-wide write lock is held instead, and
        only once a first read found something due (most sweeps find nothing)."""
        due = pending_payments.c.next_lookup_at <= now
        query = select(pending_payments).where(due).order_by(pending_payments.c.next_lookup_at)
        connection = self._tx.connection
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        elif not await connection.scalar(select(exists().where(due))):
            return []
        await self._tx.writing()
        rows = (await connection.execute(query.limit(limit))).mappings().all()
        if rows:
            ids = [row["payment_id"] for row in rows]
            await connection.execute(
                update(pending_payments)
                .where(pending_payments.c.payment_id.in_(ids))
                .values(next_lookup_at=lease_until)
            )
        return [PendingPayment(**row) for row in rows]


class SqlBankCallbacks:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, event_id: str) -> BankCallbackRecord | None:
        query = select(bank_callbacks).where(bank_callbacks.c.event_id == event_id)
        row = (await self._tx.connection.execute(query)).mappings().first()
        return BankCallbackRecord(**row) if row else None

    def add(self, record: BankCallbackRecord) -> None:
        self._tx.buffer(bank_callbacks, record.event_id, asdict(record))
