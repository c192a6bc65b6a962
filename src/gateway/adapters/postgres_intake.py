"""Accepting a payment on PostgreSQL in one statement, one round trip.

The five rows go in with one `INSERT … ON CONFLICT DO NOTHING` on the idempotency key
and data-modifying CTEs that insert the payment, job, sealed card and outbox row only
when that insert took the key. One statement is one transaction: all five rows or none,
without BEGIN and COMMIT round trips. When the key was taken, by an earlier request or
a concurrent one (PostgreSQL makes the second wait for the first to commit), a second
statement reads the record it holds.

Both run on the `DirectPool`. The rows come from the same mapping functions the
SQLAlchemy repositories use, so both paths store the same thing. A second try after a
lost answer is safe: the idempotency key makes a second try of a committed first one a
no-op that finds its own record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

from gateway.adapters.orm import card_data, idempotency_keys, jobs, outbox, payments
from gateway.adapters.outbox import outbox_row
from gateway.adapters.postgres_direct import DirectPool, cast, row_values
from gateway.adapters.repository import job_row, payment_row
from gateway.application.ports import IdempotencyRecord, NewPayment, UnitOfWork


class _Statement:
    """`WITH key AS (INSERT … ON CONFLICT DO NOTHING RETURNING …), payment AS (INSERT …
    SELECT … FROM key …), … SELECT count(*) FROM key`, its parameters numbered in the
    order of the tables' columns."""

    def __init__(self) -> None:
        self.tables: list[Table] = []
        self._count = 0
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

    def _insert(self, table: Table, source: str | None) -> str:
        self.tables.append(table)
        names = [column.name for column in table.columns]
        values = []
        for name in names:
            self._count += 1
            values.append(f"${self._count}::{cast(table, name)}")
        head = f"INSERT INTO {table.name} ({', '.join(names)}) "
        if source is None:
            return head + f"VALUES ({', '.join(values)})"
        return head + f"SELECT {', '.join(values)} FROM {source}"  # noqa: S608

    def arguments(self, rows: Mapping[Table, Mapping[str, Any]]) -> list[Any]:
        return [value for table in self.tables for value in row_values(table, rows[table])]


_ACCEPT = _Statement()
_PREVIOUS = (
    "SELECT merchant_id, key, fingerprint, job_id, payment_id, created_at"
    " FROM idempotency_keys WHERE merchant_id = $1 AND key = $2"
)


class PostgresIntake:
    def __init__(self, pool: DirectPool) -> None:
        self._pool = pool

    async def accept(self, new: NewPayment, uow: UnitOfWork) -> IdempotencyRecord | None:
        record = new.idempotency
        if await self._pool.fetchval("accept", _ACCEPT.sql, *_ACCEPT.arguments(self._rows(new))):
            return None
        found = await self._pool.fetchrow("accept", _PREVIOUS, record.merchant_id, record.key)
        if found is None:  # taken, then gone: never deleted, so not expected
            raise RuntimeError("idempotency record vanished")
        previous = IdempotencyRecord(**dict(found))
        # Our own first try committed before its answer was lost: not a replay.
        return None if previous.job_id == new.job.id else previous

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
            outbox: outbox_row(new.command),
        }
