"""A payment's trip to the bank on PostgreSQL: one statement before, one after.

`load` reads the payment, its job, the sealed card, whether a pending row exists and
the merchant's webhook endpoints in one `SELECT` with joins, outside any transaction.

`settle` is one statement, so one transaction: an `UPDATE` of the payment that applies
only while it is still `pending` and the merchant's endpoints are those `load` read,
and data-modifying CTEs that run only when it applied (they select `FROM` it): the job's
update, the card data and pending row deleted, and the events, deliveries and
`DeliverWebhook` outbox rows inserted from arrays (`unnest`), however many there are. A
bank callback holding the payment's row makes the `UPDATE` wait, and then find it final.

Both run on the `DirectPool`. A second try of `settle` after a lost answer finds the
payment final and stores nothing, as does a delivery of the same `MakePayment` twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import Table

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
from gateway.application.ports import PaymentWork, UnitOfWork
from gateway.domain.commands import DeliverWebhook
from gateway.domain.model import Job, Payment, PaymentStatus
from gateway.domain.webhooks import WebhookEndpoint

_ENDPOINT_COLUMNS = ("id", "url", "events", "created_at")


def _load_sql() -> str:
    selected = [f"p.{name} AS p_{name}" for name in columns(payments)]
    selected += [f"j.{name} AS j_{name}" for name in columns(jobs)]
    selected += ["c.sealed AS sealed", "w.payment_id IS NOT NULL AS waiting"]
    selected += [f"e.{name} AS e_{name}" for name in _ENDPOINT_COLUMNS]
    aggregates = ", ".join(f"array_agg({name} ORDER BY id) AS {name}" for name in _ENDPOINT_COLUMNS)
    # Built once from the table definitions; the values are parameters.
    return (
        f"SELECT {', '.join(selected)} FROM payments p"  # noqa: S608
        " LEFT JOIN jobs j ON j.id = $2"
        " LEFT JOIN card_data c ON c.payment_id = p.id"
        " LEFT JOIN pending_payments w ON w.payment_id = p.id"
        f" LEFT JOIN LATERAL (SELECT {aggregates} FROM webhook_endpoints"
        " WHERE merchant_id = p.merchant_id AND deleted_at IS NULL) e ON true"
        " WHERE p.id = $1"
    )


_ENDPOINT_IDS = (
    "(SELECT coalesce(array_agg(id::text ORDER BY id), '{}') FROM webhook_endpoints"
    " WHERE merchant_id = payments.merchant_id AND deleted_at IS NULL)"
)


class _Settle:
    """The settling statement; parameters: $1 payment id, $2 job id, $3 the endpoint ids
    `load` saw, then the payment's and the job's changes, then one array per column of
    each inserted table."""

    PAYMENT_CHANGES = ("status", "decline_code", "authorization_code", "failure_code", "updated_at")
    JOB_CHANGES = ("status", "error_code", "error_message", "completed_at")
    INSERTED = (events, webhook_deliveries, outbox)

    def __init__(self) -> None:
        self._count = 3
        payment_sets = self._sets(payments, self.PAYMENT_CHANGES)
        job_sets = self._sets(jobs, self.JOB_CHANGES)
        # Built once from the table definitions; every value is a numbered parameter.
        guard = f"status = '{PaymentStatus.PENDING.value}' AND {_ENDPOINT_IDS} = $3::text[]"
        parts = [
            f"p AS (UPDATE payments SET {payment_sets} WHERE id = $1 AND {guard} RETURNING id)",  # noqa: S608
            f"j AS (UPDATE jobs SET {job_sets} FROM p WHERE jobs.id = $2)",  # noqa: S608
            "c AS (DELETE FROM card_data USING p WHERE payment_id = p.id)",
            "w AS (DELETE FROM pending_payments USING p WHERE payment_id = p.id)",
        ]
        parts += [f"i_{table.name} AS ({self._insert(table)})" for table in self.INSERTED]
        self.sql = "WITH " + ", ".join(parts) + " SELECT count(*) FROM p"  # noqa: S608
        self._widths = {table: len(table.columns) for table in self.INSERTED}

    def _next(self, table: Table, name: str, suffix: str = "") -> str:
        self._count += 1
        return f"${self._count}::{cast(table, name)}{suffix}"

    def _sets(self, table: Table, names: Sequence[str]) -> str:
        return ", ".join(f"{name} = {self._next(table, name)}" for name in names)

    def _insert(self, table: Table, /) -> str:
        names = columns(table)
        arrays = ", ".join(self._next(table, name, "[]") for name in names)
        return (
            f"INSERT INTO {table.name} ({', '.join(names)})"  # noqa: S608
            f" SELECT u.* FROM p CROSS JOIN unnest({arrays}) AS u"
        )

    def arguments(
        self,
        work: PaymentWork,
        payment: Payment,
        job: Job,
        rows: Mapping[Table, Sequence[Mapping[str, Any]]],
    ) -> list[Any]:
        endpoint_ids = [endpoint.id for endpoint in work.endpoints]
        arguments: list[Any] = [payment.id, job.id, endpoint_ids]
        arguments += bound(payments, payment_changes(payment), self.PAYMENT_CHANGES)
        arguments += bound(jobs, job_changes(job), self.JOB_CHANGES)
        for table in self.INSERTED:
            values = [row_values(table, row) for row in rows[table]]
            if values:
                arguments += [list(column) for column in zip(*values, strict=True)]
            else:
                arguments += [[] for _ in range(self._widths[table])]
        return arguments


LOAD_SQL = _load_sql()
_SETTLE = _Settle()
SETTLE_SQL = _SETTLE.sql


class PostgresProcessing:
    def __init__(self, pool: DirectPool) -> None:
        self._pool = pool
        self._ids = TimeOrderedIds()

    async def load(self, payment_id: str, job_id: str, uow: UnitOfWork) -> PaymentWork | None:
        record = await self._pool.fetchrow("load", LOAD_SQL, payment_id, job_id)
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
        arguments = _SETTLE.arguments(work, payment, job, rows)
        return bool(await self._pool.fetchval("settle", _SETTLE.sql, *arguments))


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
