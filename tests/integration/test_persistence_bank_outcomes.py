"""Pending payments and bank callbacks on real SQLite and PostgreSQL, and their handlers."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.clock import SystemClock
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.application.bank_callbacks import BankCallbackDeps, receive_bank_callback
from gateway.application.mediator import Mediator
from gateway.application.ports import BankCallbackRecord, CommitConflict, PendingPayment
from gateway.domain import signature
from gateway.domain.commands import BankCallbackAccepted, ReceiveBankCallback
from gateway.domain.merchant import Merchant
from gateway.domain.model import JobStatus, PaymentStatus
from gateway.domain.result import Ok
from tests.fixtures.database import stored_merchant, stored_payment

T0 = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
SECRET = "bank-secret"


async def pending(engine: AsyncEngine, merchant: Merchant, due: datetime) -> PendingPayment:
    payment = await stored_payment(engine, merchant.id)
    async with SqlUnitOfWork(engine) as uow:
        job = await uow.jobs.for_payment(payment.id)
        assert job is not None
        row = PendingPayment(payment.id, job.id, merchant.id, T0, due)
        uow.pending_payments.add(row)
        await uow.commit()
    return row


async def test_a_pending_payment_is_stored_rescheduled_and_deleted(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    row = await pending(engine, merchant, T0 + timedelta(seconds=30))
    later = T0 + timedelta(minutes=5)

    async with SqlUnitOfWork(engine) as uow:
        assert await uow.pending_payments.get(row.payment_id) == row
        await uow.pending_payments.reschedule(row.payment_id, later, 3)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.pending_payments.get(row.payment_id)
        assert stored == PendingPayment(row.payment_id, row.job_id, merchant.id, T0, later, 3)
        await uow.pending_payments.delete(row.payment_id)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.pending_payments.get(row.payment_id) is None


async def test_claiming_takes_due_rows_earliest_first_and_leases_them(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    rows = [await pending(engine, merchant, T0 + timedelta(seconds=s)) for s in (20, 10, 99)]
    lease = T0 + timedelta(minutes=1)

    async with SqlUnitOfWork(engine) as uow:
        claimed = await uow.pending_payments.claim_due(T0 + timedelta(seconds=30), 5, lease)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        again = await uow.pending_payments.claim_due(T0 + timedelta(seconds=30), 5, lease)
        leased = await uow.pending_payments.get(rows[0].payment_id)

    assert [row.payment_id for row in claimed] == [rows[1].payment_id, rows[0].payment_id]
    assert again == []
    assert leased is not None
    assert leased.next_lookup_at == lease


async def test_concurrent_claims_skip_each_others_rows(pg_engine: AsyncEngine) -> None:
    merchant = await stored_merchant(pg_engine)
    rows = [await pending(pg_engine, merchant, T0 + timedelta(seconds=s)) for s in (1, 2, 3)]
    now, lease = T0 + timedelta(seconds=10), T0 + timedelta(minutes=1)

    async with SqlUnitOfWork(pg_engine) as first, SqlUnitOfWork(pg_engine) as second:
        taken_first = await first.pending_payments.claim_due(now, 1, lease)
        async with asyncio.timeout(5):  # it must skip the locked row, not wait for it
            taken_second = await second.pending_payments.claim_due(now, 5, lease)
        await first.commit()
        await second.commit()

    assert [r.payment_id for r in taken_first] == [rows[0].payment_id]
    assert [r.payment_id for r in taken_second] == [rows[1].payment_id, rows[2].payment_id]


def record(
    payment_id: str, event_id: str = "evt_1", outcome: str = "applied"
) -> BankCallbackRecord:
    return BankCallbackRecord(event_id, payment_id, "payment.authorized", outcome, T0, T0)


async def test_a_bank_callback_is_recorded_once_per_event_id(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    payment = await stored_payment(engine, merchant.id)
    async with SqlUnitOfWork(engine) as uow:
        uow.bank_callbacks.add(record(payment.id))
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.bank_callbacks.get("evt_1") == record(payment.id)
        assert await uow.bank_callbacks.get("evt_2") is None
        uow.bank_callbacks.add(record(payment.id, outcome="duplicate"))
        with pytest.raises(CommitConflict):
            await uow.commit()


def mediator(engine: AsyncEngine, lock: asyncio.Lock) -> Mediator:
    deps = BankCallbackDeps(SystemClock(), (SECRET,))
    return Mediator(
        commands={ReceiveBankCallback: partial(receive_bank_callback, deps=deps)},
        queries={},
        uow_factory=lambda: SqlUnitOfWork(engine, lock),
    )


async def test_concurrent_deliveries_of_one_callback_settle_the_payment_once(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    row = await pending(engine, merchant, T0)
    body = {
        "id": "evt_race",
        "type": "payment.authorized",
        "idempotency_key": row.payment_id,
        "authorization_code": "RACE01",
    }
    raw = json.dumps(body).encode()
    callback = ReceiveBankCallback(raw, signature.sign(raw, [SECRET], int(time.time())))
    bus = mediator(engine, asyncio.Lock())

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(bus.send(callback) for _ in range(5)))

    outcomes = sorted(r.value.outcome for r in results if isinstance(r, Ok))
    assert all(isinstance(r.value, BankCallbackAccepted) for r in results if isinstance(r, Ok))
    assert len(outcomes) == 5
    assert outcomes.count("applied") == 1
    async with SqlUnitOfWork(engine) as uow:
        payment = await uow.payments.get(row.payment_id)
        job = await uow.jobs.get(row.job_id)
        assert await uow.pending_payments.get(row.payment_id) is None
        stored = await uow.bank_callbacks.get("evt_race")
    assert payment is not None
    assert job is not None
    assert (payment.status, payment.authorization_code) == (PaymentStatus.AUTHORIZED, "RACE01")
    assert job.status is JobStatus.COMPLETED
    assert stored is not None
    assert stored.outcome == "applied"
