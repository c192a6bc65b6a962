"""Repositories of one SQL transaction, and the explicit row ↔ aggregate mapping.

`add()` only buffers a row (`Transaction.flush()` inserts them all at commit); `get()`
reads now; `save()` and `delete()` write now, once the transaction may write. A change
to a row still in the buffer changes the buffered row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.engine import RowMapping

from gateway.adapters.orm import api_keys, card_data, idempotency_keys, jobs, merchants, payments
from gateway.adapters.webhook_repository import record_events
from gateway.application.ports import IdempotencyRecord
from gateway.domain.card import CardScheme, CardSummary
from gateway.domain.merchant import ApiKey, Merchant
from gateway.domain.model import Job, JobError, JobStatus, Payment, PaymentStatus
from gateway.domain.money import SUPPORTED_CURRENCIES, Amount, Currency, Money
from gateway.domain.value_objects import Metadata, Reference

if TYPE_CHECKING:
    from gateway.adapters.unit_of_work import Transaction

Row = dict[str, Any]


def payment_row(payment: Payment) -> Row:
    card = payment.card
    return {
        "id": payment.id,
        "merchant_id": payment.merchant_id,
        "amount": payment.money.minor_units,
        "currency": payment.money.currency.code,
        "reference": payment.reference.value if payment.reference else None,
        "metadata": dict(payment.metadata.entries),
        "card_scheme": card.scheme.value,
        "card_bin": card.bin,
        "card_last4": card.last4,
        "card_expiry_month": card.expiry_month,
        "card_expiry_year": card.expiry_year,
        "card_holder_name": card.holder_name,
        "created_at": payment.created_at,
        **payment_changes(payment),
    }


def payment_changes(payment: Payment) -> Row:
    return {
        "status": payment.status.value,
        "decline_code": payment.decline_code,
        "authorization_code": payment.authorization_code,
        "failure_code": payment.failure_code,
        "updated_at": payment.updated_at,
    }


def payment_from_row(row: RowMapping | Mapping[str, Any]) -> Payment:
    """Rebuilds the aggregate from stored, trusted values (no re-validation)."""
    code = row["currency"]
    reference = row["reference"]
    return Payment(
        id=row["id"],
        merchant_id=row["merchant_id"],
        money=Money(Amount(row["amount"]), Currency(code, SUPPORTED_CURRENCIES[code])),
        card=CardSummary(
            scheme=CardScheme(row["card_scheme"]),
            bin=row["card_bin"],
            last4=row["card_last4"],
            expiry_month=row["card_expiry_month"],
            expiry_year=row["card_expiry_year"],
            holder_name=row["card_holder_name"],
        ),
        reference=Reference(reference) if reference is not None else None,
        metadata=Metadata(MappingProxyType(dict(row["metadata"]))),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status=PaymentStatus(row["status"]),
        decline_code=row["decline_code"],
        authorization_code=row["authorization_code"],
        failure_code=row["failure_code"],
    )


def job_row(job: Job) -> Row:
    return {
        "id": job.id,
        "merchant_id": job.merchant_id,
        "payment_id": job.payment_id,
        "type": "payment",
        "created_at": job.created_at,
        **job_changes(job),
    }


def job_changes(job: Job) -> Row:
    return {
        "status": job.status.value,
        "error_code": job.error.code if job.error else None,
        "error_message": job.error.message if job.error else None,
        "completed_at": job.completed_at,
    }


def job_from_row(row: RowMapping | Mapping[str, Any]) -> Job:
    code = row["error_code"]
    return Job(
        id=row["id"],
        merchant_id=row["merchant_id"],
        payment_id=row["payment_id"],
        created_at=row["created_at"],
        status=JobStatus(row["status"]),
        error=JobError(code, row["error_message"] or "") if code is not None else None,
        completed_at=row["completed_at"],
    )


class SqlPayments:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, payment: Payment) -> None:
        self._tx.buffer(payments, payment.id, payment_row(payment))

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        query = select(payments).where(payments.c.id == payment_id)
        if for_update:  # about to change it: lock the row (PostgreSQL) or the writer (SQLite)
            await self._tx.writing()
            query = query.with_for_update()
        row = (await self._tx.connection.execute(query)).mappings().first()
        return payment_from_row(row) if row else None

    async def save(self, payment: Payment) -> None:
        await record_events(self._tx, payment)  # merchant events: in this same transaction
        changes = payment_changes(payment)
        if (row := self._tx.pending(payments, payment.id)) is not None:
            row.update(changes)
            return
        connection = await self._tx.writing()
        await connection.execute(update(payments).where(payments.c.id == payment.id), changes)


class SqlJobs:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, job: Job) -> None:
        self._tx.buffer(jobs, job.id, job_row(job))

    async def get(self, job_id: str) -> Job | None:
        query = select(jobs).where(jobs.c.id == job_id)
        row = (await self._tx.connection.execute(query)).mappings().first()
        return job_from_row(row) if row else None

    async def for_payment(self, payment_id: str) -> Job | None:
        query = select(jobs).where(jobs.c.payment_id == payment_id)
        row = (await self._tx.connection.execute(query)).mappings().first()
        return job_from_row(row) if row else None

    async def save(self, job: Job) -> None:
        changes = job_changes(job)
        if (row := self._tx.pending(jobs, job.id)) is not None:
            row.update(changes)
            return
        connection = await self._tx.writing()
        await connection.execute(update(jobs).where(jobs.c.id == job.id), changes)


class SqlCards:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, payment_id: str, sealed: bytes) -> None:
        row = {"payment_id": payment_id, "sealed": sealed, "created_at": datetime.now(UTC)}
        self._tx.buffer(card_data, payment_id, row)

    async def get(self, payment_id: str) -> bytes | None:
        query = select(card_data.c.sealed).where(card_data.c.payment_id == payment_id)
        sealed = (await self._tx.connection.execute(query)).scalar_one_or_none()
        return bytes(sealed) if sealed is not None else None

    async def delete(self, payment_id: str) -> None:
        if self._tx.unbuffer(card_data, payment_id):
            return
        connection = await self._tx.writing()
        await connection.execute(delete(card_data).where(card_data.c.payment_id == payment_id))


class SqlIdempotencyRecords:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, merchant_id: str, key: str) -> IdempotencyRecord | None:
        query = select(idempotency_keys).where(
            idempotency_keys.c.merchant_id == merchant_id, idempotency_keys.c.key == key
        )
        row = (await self._tx.connection.execute(query)).mappings().first()
        return IdempotencyRecord(**row) if row else None

    def add(self, record: IdempotencyRecord) -> None:
        self._tx.buffer(idempotency_keys, (record.merchant_id, record.key), asdict(record))


class SqlMerchants:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, merchant: Merchant) -> None:
        row = {"id": merchant.id, "name": merchant.name, "created_at": merchant.created_at}
        self._tx.buffer(merchants, merchant.id, row)

    async def get(self, merchant_id: str) -> Merchant | None:
        query = select(merchants).where(merchants.c.id == merchant_id)
        row = (await self._tx.connection.execute(query)).mappings().first()
        return Merchant(**row) if row else None

    async def any(self) -> bool:
        return bool(await self._tx.connection.scalar(select(exists().select_from(merchants))))

    def add_key(self, key: ApiKey) -> None:
        self._tx.buffer(api_keys, key.id, asdict(key))

    async def find_key(self, prefix: str) -> ApiKey | None:
        """The key with that prefix, revoked or not (`ApiKey.active` tells)."""
        query = select(api_keys).where(api_keys.c.prefix == prefix)
        row = (await self._tx.connection.execute(query)).mappings().first()
        return ApiKey(**row) if row else None

    async def revoke_key(self, key_id: str, now: datetime) -> bool:
        """True if the key exists; a key revoked before keeps its first revocation time."""
        connection = await self._tx.writing()
        result = await connection.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if result.rowcount:
            return True
        return bool(await connection.scalar(select(exists().where(api_keys.c.id == key_id))))

    async def list_keys(self, merchant_id: str) -> Sequence[ApiKey]:
        query = (
            select(api_keys)
            .where(api_keys.c.merchant_id == merchant_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        rows = (await self._tx.connection.execute(query)).mappings().all()
        return [ApiKey(**row) for row in rows]
