"""Accepting payments on PostgreSQL: one statement, one round trip and one commit for
the payments that come together (`adapters/batches.py`).

The rows go in with one `INSERT … ON CONFLICT DO NOTHING` of the idempotency keys and
data-modifying CTEs that insert each payment's payment, job, sealed card and outbox rows
only when that insert took its key. One statement is one transaction: all of a payment's
five rows or none. When a key was taken, by an earlier request or a concurrent one
(PostgreSQL makes the second wait for the first to commit), a second statement reads the
record it holds.

A request starts a statement at once when fewer than `IN_FLIGHT` are running; under load
the requests that come meanwhile wait for one to finish and then go together (up to
`LARGEST`). A batch never holds one key twice. A batch PostgreSQL refuses is tried again
one payment at a time, so a bad row fails only its own request; a connection that fails
twice fails every request of the batch (503, and the client sends it again).

Both statements run on the `DirectPool`. The rows come from the same mapping functions the
SQLAlchemy repositories use, so both paths store the same thing. A second try after a
lost answer is safe: the idempotency key makes a second try of a committed first one a
no-op that finds its own record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Table

from gateway.adapters.batches import Batches, ObserveBatch, unobserved
from gateway.adapters.orm import card_data, idempotency_keys, jobs, outbox, payments
from gateway.adapters.outbox import outbox_row
from gateway.adapters.postgres_direct import (
    DirectPool,
    bound_row,
    cast,
    columns,
    each_alone_if_refused,
)
from gateway.adapters.repository import job_row, payment_row
from gateway.application.ports import IdempotencyRecord, NewPayment, UnitOfWork

IN_FLIGHT = 2
LARGEST = 64


@dataclass(frozen=True, slots=True)
class _Accepting:
    """One payment's part of an accepting statement: its row of each table, bound."""

    merchant_id: str
    key: str
    payment_id: str
    rows: dict[Table, dict[str, Any]]


class _Accept:
    """`WITH taken AS (INSERT INTO idempotency_keys … SELECT … FROM json_to_recordset($1)
    … ORDER BY merchant_id, key ON CONFLICT DO NOTHING RETURNING payment_id), p AS (INSERT
    INTO payments … SELECT … FROM json_to_recordset($2) … JOIN taken …), … SELECT
    payment_id FROM taken`.

    Parameters: one JSON array per table of the batch's rows, each row an object of its
    columns and `owner`, the payment it belongs to. JSON, not an array per column: asyncpg
    checks every element of an array parameter against three abstract base classes, which
    cost more than a statement per payment; msgspec writes the JSON in one call. The keys
    go in in key order, so that the batches of two API processes take the keys they share
    in the same order (and cannot deadlock)."""

    TABLES = (idempotency_keys, payments, jobs, card_data, outbox)

    def __init__(self) -> None:
        self._names = {table: columns(table) for table in self.TABLES}
        keys = ", ".join(self._names[idempotency_keys])
        parts = [
            f"taken AS (INSERT INTO idempotency_keys ({keys})"  # noqa: S608
            f" SELECT {self._values(idempotency_keys)} FROM {self._rows(idempotency_keys, 1)}"
            " ORDER BY r.merchant_id, r.key"
            " ON CONFLICT (merchant_id, key) DO NOTHING RETURNING payment_id)"
        ]
        for number, table in enumerate(self.TABLES[1:], start=2):
            parts.append(
                f"t{number} AS (INSERT INTO {table.name} ({', '.join(self._names[table])})"  # noqa: S608
                f" SELECT {self._values(table)} FROM {self._rows(table, number)}"
                " JOIN taken ON taken.payment_id = r.owner)"
            )
        # Built once from the table definitions; every value is a parameter.
        self.sql = "WITH " + ", ".join(parts) + " SELECT payment_id FROM taken"  # noqa: S608

    def _values(self, table: Table) -> str:
        return ", ".join(
            f"decode(r.{name}, 'base64')" if cast(table, name) == "bytea" else f"r.{name}"
            for name in self._names[table]
        )

    def _rows(self, table: Table, number: int) -> str:
        kinds = (cast(table, name) for name in self._names[table])
        shape = ", ".join(
            f"{name} {'text' if kind == 'bytea' else kind}"  # bytes travel as base64
            for name, kind in zip(self._names[table], kinds, strict=True)
        )
        return f"json_to_recordset(${number}::json) AS r({shape}, owner text)"

    def arguments(self, batch: Sequence[_Accepting]) -> list[str]:
        return [
            msgspec.json.encode(
                [{**one.rows[table], "owner": one.payment_id} for one in batch]
            ).decode()
            for table in self.TABLES
        ]


_ACCEPT = _Accept()
_PREVIOUS = (
    "SELECT merchant_id, key, fingerprint, job_id, payment_id, created_at"
    " FROM idempotency_keys WHERE merchant_id = $1 AND key = $2"
)


class PostgresIntake:
    def __init__(
        self,
        pool: DirectPool,
        *,
        in_flight: int = IN_FLIGHT,
        largest: int = LARGEST,
        observe_batch: ObserveBatch | None = None,
    ) -> None:
        self._pool = pool
        self._observe = observe_batch or unobserved
        self._accepts: Batches[_Accepting, bool] = Batches(
            self._accept_many,
            lambda one: (one.merchant_id, one.key),
            in_flight=in_flight,
            largest=largest,
        )

    async def accept(self, new: NewPayment, uow: UnitOfWork) -> IdempotencyRecord | None:
        record = new.idempotency
        rows = {table: bound_row(table, row) for table, row in self._rows(new).items()}
        if await self._accepts(_Accepting(record.merchant_id, record.key, new.payment.id, rows)):
            return None
        found = await self._pool.fetchrow("accept", _PREVIOUS, record.merchant_id, record.key)
        if found is None:  # taken, then gone: never deleted, so not expected
            raise RuntimeError("idempotency record vanished")
        previous = IdempotencyRecord(**dict(found))
        # Our own first try committed before its answer was lost: not a replay.
        return None if previous.job_id == new.job.id else previous

    async def _accept_many(self, batch: Sequence[_Accepting]) -> list[bool | BaseException]:
        return await each_alone_if_refused(self._accept_together, batch, "accept_batch_split")

    async def _accept_together(self, batch: Sequence[_Accepting]) -> list[bool | BaseException]:
        self._observe("accept", len(batch))
        records = await self._pool.fetch("accept", _ACCEPT.sql, *_ACCEPT.arguments(batch))
        taken = {record["payment_id"] for record in records}
        return [one.payment_id in taken for one in batch]

    @staticmethod
    def _rows(new: NewPayment) -> dict[Table, Mapping[str, Any]]:
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
