"""A payment's trip to the bank on PostgreSQL: one statement before, one after, each
shared by the payments that go at the same time (`adapters/batches.py`).

`load` reads, for every payment asked for meanwhile, the payment, its job, the sealed
card, whether a pending row exists and the merchant's webhook endpoints in one `SELECT`
with joins from `unnest` of the ids, outside any transaction.

`settle` is one statement, so one transaction, for a batch: an `UPDATE` of the payments
from `unnest` of their changes that applies to each only while it is still `pending` and
its merchant's endpoints are those `load` read, and data-modifying CTEs that act only for
the payments it updated (they join on its `RETURNING`): the jobs' update, the card data
and pending rows deleted, and the events, deliveries and `DeliverWebhook` outbox rows
inserted from arrays, each row with the payment it belongs to. A bank callback holding a
payment's row makes the `UPDATE` (and so its batch) wait, and then find it final. A batch
that fails with a PostgreSQL error is settled again one payment at a time, so a bad row
fails only its own.

The endpoints are compared once per payment of the batch, in `u`, whatever the plan. As
a condition of the `UPDATE`'s join they were compared once per row the plan read: a plan
made while `payments` was small reads every pending payment, and so it queried each one's
merchant's endpoints (1.5 of a batch's 1.7 ms in the bench).

One statement of each kind runs at a time: with two, PostgreSQL spent 0.51-0.56 ms per
payment on them, with one 0.35, at the same throughput (64 payments in flight, in
process). Both run on the `DirectPool`. A second try of `settle` after a lost answer finds
the payment final and stores nothing, as does a delivery of the same `MakePayment` twice
(a batch never holds one payment twice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Table

from gateway.adapters.batches import Batches, ObserveBatch, unobserved
from gateway.adapters.ids import TimeOrderedIds
from gateway.adapters.orm import (
    events,
    jobs,
    outbox,
    payments,
    webhook_deliveries,
    webhook_endpoints,
)
from gateway.adapters.outbox import outbox_row
from gateway.adapters.postgres_direct import (
    DirectPool,
    bound,
    cast,
    columns,
    each_alone_if_refused,
    loaded,
    row_values,
)
from gateway.adapters.repository import (
    job_changes,
    job_from_row,
    payment_changes,
    payment_from_row,
)
from gateway.adapters.webhook_repository import delivery_row, endpoint_from_row, event_row
from gateway.application.merchant_events import payment_events
from gateway.application.ports import IdGenerator, PaymentWork, UnitOfWork
from gateway.domain.commands import DeliverWebhook
from gateway.domain.model import Job, Payment, PaymentStatus
from gateway.domain.webhooks import WebhookEndpoint

_ENDPOINT_COLUMNS = ("id", "url", "events", "created_at")


def _load_sql() -> str:
    selected = ["x.payment_id AS k_payment", "x.job_id AS k_job"]
    selected += [f"p.{name} AS p_{name}" for name in columns(payments)]
    selected += [f"j.{name} AS j_{name}" for name in columns(jobs)]
    selected += ["c.sealed AS sealed", "w.payment_id IS NOT NULL AS waiting"]
    selected += [f"e.{name} AS e_{name}" for name in _ENDPOINT_COLUMNS]
    aggregates = ", ".join(f"array_agg({name} ORDER BY id) AS {name}" for name in _ENDPOINT_COLUMNS)
    # Built once from the table definitions; the values are parameters.
    return (
        f"SELECT {', '.join(selected)}"  # noqa: S608
        " FROM unnest($1::text[], $2::text[]) AS x(payment_id, job_id)"
        " JOIN payments p ON p.id = x.payment_id"
        " LEFT JOIN jobs j ON j.id = x.job_id"
        " LEFT JOIN card_data c ON c.payment_id = p.id"
        " LEFT JOIN pending_payments w ON w.payment_id = p.id"
        f" LEFT JOIN LATERAL (SELECT {aggregates} FROM webhook_endpoints"
        " WHERE merchant_id = p.merchant_id AND deleted_at IS NULL) e ON true"
    )


# The merchant's endpoints as `load` reads them (oldest first), one string per payment.
_ENDPOINT_IDS = (
    "(SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM webhook_endpoints"
    " WHERE merchant_id = u.merchant_id AND deleted_at IS NULL)"
)


@dataclass(frozen=True, slots=True)
class _Settling:
    """One payment's part of a settling statement: its `u` columns, and its rows of each
    inserted table (values in column order, bound)."""

    payment_id: str
    changes: list[Any]
    rows: dict[Table, list[list[Any]]]


class _Settle:
    """The settling statement of a batch; parameters: one array per column of `u` (payment
    id, merchant id, job id, the endpoint ids `load` saw, the payment's changes, the job's
    changes),
    then for each inserted table one array per column and one of the payments the rows
    belong to."""

    PAYMENT_CHANGES = ("status", "decline_code", "authorization_code", "failure_code", "updated_at")
    JOB_CHANGES = ("status", "error_code", "error_message", "completed_at")
    INSERTED = (events, webhook_deliveries, outbox)

    def __init__(self) -> None:
        self._count = 0
        u_columns = [("id", "text"), ("merchant_id", "text"), ("job_id", "text")]
        u_columns += [("endpoints", "text")]
        u_columns += [(f"p_{name}", cast(payments, name)) for name in self.PAYMENT_CHANGES]
        u_columns += [(f"j_{name}", cast(jobs, name)) for name in self.JOB_CHANGES]
        arrays = [self._next(kind) for _, kind in u_columns]
        names = ", ".join(name for name, _ in u_columns)
        payment_sets = ", ".join(f"{name} = u.p_{name}" for name in self.PAYMENT_CHANGES)
        job_sets = ", ".join(f"{name} = u.j_{name}" for name in self.JOB_CHANGES)
        pending = PaymentStatus.PENDING.value
        # Built once from the table definitions; every value is a numbered parameter.
        parts = [
            f"u AS MATERIALIZED (SELECT * FROM unnest({', '.join(arrays)}) AS u({names})"  # noqa: S608
            f" WHERE u.endpoints = {_ENDPOINT_IDS})",
            f"p AS (UPDATE payments SET {payment_sets} FROM u WHERE payments.id = u.id"  # noqa: S608
            f" AND payments.id = ANY({arrays[0]}) AND payments.merchant_id = u.merchant_id"
            f" AND payments.status = '{pending}' RETURNING payments.id)",
            f"j AS (UPDATE jobs SET {job_sets} FROM u JOIN p ON p.id = u.id"  # noqa: S608
            " WHERE jobs.id = u.job_id)",
            "c AS (DELETE FROM card_data USING p WHERE card_data.payment_id = p.id)",
            "w AS (DELETE FROM pending_payments USING p WHERE pending_payments.payment_id = p.id)",
        ]
        parts += [f"i_{table.name} AS ({self._insert(table)})" for table in self.INSERTED]
        self.sql = "WITH " + ", ".join(parts) + " SELECT id FROM p"  # noqa: S608
        self._widths = {table: len(table.columns) for table in self.INSERTED}

    def _next(self, kind: str) -> str:
        self._count += 1
        return f"${self._count}::{kind}[]"

    def _insert(self, table: Table, /) -> str:
        names = columns(table)
        arrays = ", ".join(self._next(cast(table, name)) for name in names)
        owners = self._next("text")
        return (
            f"INSERT INTO {table.name} ({', '.join(names)})"  # noqa: S608
            f" SELECT {', '.join(f'r.{name}' for name in names)}"
            f" FROM unnest({arrays}, {owners}) AS r({', '.join(names)}, owner)"
            " JOIN p ON p.id = r.owner"
        )

    def one(
        self,
        work: PaymentWork,
        payment: Payment,
        job: Job,
        rows: Mapping[Table, Sequence[Mapping[str, Any]]],
    ) -> _Settling:
        endpoints = ",".join(endpoint.id for endpoint in work.endpoints)
        changes: list[Any] = [payment.id, payment.merchant_id, job.id, endpoints]
        changes += bound(payments, payment_changes(payment), self.PAYMENT_CHANGES)
        changes += bound(jobs, job_changes(job), self.JOB_CHANGES)
        inserted = {table: [row_values(table, row) for row in rows[table]] for table in rows}
        return _Settling(payment.id, changes, inserted)

    def arguments(self, batch: Sequence[_Settling]) -> list[Any]:
        changes = (settling.changes for settling in batch)
        arguments: list[Any] = [list(column) for column in zip(*changes, strict=True)]
        for table in self.INSERTED:
            values = [row for settling in batch for row in settling.rows[table]]
            owners = [settling.payment_id for settling in batch for _ in settling.rows[table]]
            if values:
                arguments += [list(column) for column in zip(*values, strict=True)]
            else:
                arguments += [[] for _ in range(self._widths[table])]
            arguments.append(owners)
        return arguments


LOAD_SQL = _load_sql()
_SETTLE = _Settle()
SETTLE_SQL = _SETTLE.sql


class PostgresProcessing:
    def __init__(
        self,
        pool: DirectPool,
        *,
        ids: IdGenerator | None = None,
        in_flight: int = 1,
        largest: int = 100,
        observe_batch: ObserveBatch | None = None,
    ) -> None:
        self._pool = pool
        self._ids = ids or TimeOrderedIds()
        self._observe = observe_batch or unobserved
        self._loads: Batches[tuple[str, str], asyncpg.Record | None] = Batches(
            self._load_many, lambda ask: ask, in_flight=in_flight, largest=largest
        )
        self._settles: Batches[_Settling, bool] = Batches(
            self._settle_many, lambda one: one.payment_id, in_flight=in_flight, largest=largest
        )

    async def load(self, payment_id: str, job_id: str, uow: UnitOfWork) -> PaymentWork | None:
        record = await self._loads((payment_id, job_id))
        if record is None:
            return None
        job = job_from_row(loaded(jobs, record, "j_")) if record["j_id"] is not None else None
        sealed = record["sealed"]
        return PaymentWork(
            payment=payment_from_row(loaded(payments, record, "p_")),
            job=job,
            sealed_card=bytes(sealed) if sealed is not None else None,
            waiting=sealed is None and record["waiting"],
            endpoints=_endpoints(record),
        )

    async def settle(self, work: PaymentWork, payment: Payment, job: Job, uow: UnitOfWork) -> bool:
        new_events, deliveries = payment_events(payment, work.endpoints, self._ids)
        rows = {
            events: [event_row(event) for event in new_events],
            webhook_deliveries: [delivery_row(delivery) for delivery in deliveries],
            outbox: [outbox_row(DeliverWebhook(delivery.id, 1)) for delivery in deliveries],
        }
        return await self._settles(_SETTLE.one(work, payment, job, rows))

    async def _load_many(self, asks: Sequence[tuple[str, str]]) -> list[asyncpg.Record | None]:
        payment_ids = [payment_id for payment_id, _ in asks]
        job_ids = [job_id for _, job_id in asks]
        self._observe("load", len(asks))
        records = await self._pool.fetch("load", LOAD_SQL, payment_ids, job_ids)
        found = {(record["k_payment"], record["k_job"]): record for record in records}
        return [found.get(ask) for ask in asks]

    async def _settle_many(self, batch: Sequence[_Settling]) -> list[bool | BaseException]:
        return await each_alone_if_refused(self._settle_together, batch, "settle_batch_split")

    async def _settle_together(self, batch: Sequence[_Settling]) -> list[bool | BaseException]:
        self._observe("settle", len(batch))
        records = await self._pool.fetch("settle", _SETTLE.sql, *_SETTLE.arguments(batch))
        settled = {record["id"] for record in records}
        return [one.payment_id in settled for one in batch]


def _endpoints(record: asyncpg.Record) -> tuple[WebhookEndpoint, ...]:
    if record["e_id"] is None:
        return ()
    merchant_id = record["p_merchant_id"]
    found = []
    for values in zip(*(record[f"e_{name}"] for name in _ENDPOINT_COLUMNS), strict=True):
        row = dict(zip(_ENDPOINT_COLUMNS, values, strict=True))
        row |= {"merchant_id": merchant_id, "deleted_at": None}
        found.append(endpoint_from_row(loaded(webhook_endpoints, row)))
    return tuple(found)
