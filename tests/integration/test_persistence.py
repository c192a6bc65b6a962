"""The unit of work and its repositories against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.database import create_engine, ping
from gateway.adapters.orm import card_data, idempotency_keys, outbox, payments
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.application.ports import CommitConflict, IdempotencyRecord
from gateway.domain.commands import MakePayment
from gateway.domain.merchant import Merchant
from gateway.domain.model import JobError, JobStatus, PaymentStatus
from tests.fixtures.database import a_job, a_merchant, a_payment, ids, stored_payment


async def count(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)))  # type: ignore[arg-type]


def a_record(merchant_id: str, key: str = "key-1") -> IdempotencyRecord:
    return IdempotencyRecord(
        merchant_id, key, "fingerprint", ids.new("job"), ids.new("pay"), datetime.now(UTC)
    )


async def test_ping_answers_true_for_a_live_database(engine: AsyncEngine) -> None:
    assert await ping(engine)


async def test_ping_answers_false_when_the_database_is_unreachable() -> None:
    dead = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    try:
        assert await ping(dead) is False
    finally:
        await dead.dispose()


async def test_payment_round_trips_every_field(engine: AsyncEngine, merchant: Merchant) -> None:
    paris = timezone(timedelta(hours=1))
    payment = a_payment(
        merchant.id,
        amount=99_999_999_999,
        currency="KWD",
        reference="ORD-001",
        metadata={"customer": "c_42", "note": "déjà vu ✓"},
        created_at=datetime(2026, 11, 23, 19, 0, 0, 123456, tzinfo=paris),
    )
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(payment)
        await uow.commit()

    async with SqlUnitOfWork(engine) as uow:
        loaded = await uow.payments.get(payment.id)

    assert loaded == payment
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert loaded.created_at == datetime(2026, 11, 23, 18, 0, 0, 123456, tzinfo=UTC)
    assert loaded.money.currency.exponent == 3
    assert dict(loaded.metadata.entries) == {"customer": "c_42", "note": "déjà vu ✓"}


async def test_payment_without_optional_fields_round_trips(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    payment = a_payment(merchant.id, holder_name=None)
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(payment)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.payments.get(payment.id) == payment


async def test_saved_settlement_is_read_back(engine: AsyncEngine, merchant: Merchant) -> None:
    payment = await stored_payment(engine, merchant.id)
    later = payment.created_at + timedelta(seconds=3)
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.payments.get(payment.id, for_update=True)
        assert stored is not None
        stored.decline("insufficient_funds", later)
        await uow.payments.save(stored)
        await uow.commit()

    async with SqlUnitOfWork(engine) as uow:
        loaded = await uow.payments.get(payment.id)
    assert loaded is not None
    assert loaded.status is PaymentStatus.DECLINED
    assert loaded.decline_code == "insufficient_funds"
    assert loaded.updated_at == later


async def test_unknown_payment_and_job_are_none(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.payments.get("pay_missing") is None
        assert await uow.jobs.get("job_missing") is None
        assert await uow.cards.get("pay_missing") is None


async def test_failed_job_round_trips_with_its_error(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    payment = a_payment(merchant.id)
    job = a_job(payment)
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(payment)
        uow.jobs.add(job)
        await uow.commit()
    finished = job.created_at + timedelta(seconds=1)
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.jobs.get(job.id)
        assert stored == job
        stored.fail(JobError("bank_unavailable", "the bank kept failing"), finished)
        await uow.jobs.save(stored)
        await uow.commit()

    async with SqlUnitOfWork(engine) as uow:
        loaded = await uow.jobs.get(job.id)
    assert loaded is not None
    assert loaded.status is JobStatus.FAILED
    assert loaded.error == JobError("bank_unavailable", "the bank kept failing")
    assert loaded.completed_at == finished


async def test_sealed_card_is_stored_read_and_deleted(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    payment = a_payment(merchant.id)
    sealed = bytes(range(256))
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(payment)
        uow.cards.add(payment.id, sealed)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.cards.get(payment.id) == sealed
        await uow.cards.delete(payment.id)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.cards.get(payment.id) is None


async def test_one_commit_writes_a_whole_request_in_foreign_key_order(engine: AsyncEngine) -> None:
    merchant = a_merchant()
    payment = a_payment(merchant.id)
    job = a_job(payment)
    async with SqlUnitOfWork(engine) as uow:
        # Children first on purpose: the commit orders the inserts itself.
        uow.idempotency.add(a_record(merchant.id))
        uow.outbox.add(MakePayment(payment.id, job.id, merchant.id))
        uow.cards.add(payment.id, b"sealed")
        uow.jobs.add(job)
        uow.payments.add(payment)
        uow.merchants.add(merchant)
        await uow.commit()

    async with SqlUnitOfWork(engine) as uow:
        assert await uow.merchants.get(merchant.id) == merchant
        assert await uow.payments.get(payment.id) == payment
        assert await uow.jobs.get(job.id) == job
        assert await uow.cards.get(payment.id) == b"sealed"
        record = await uow.idempotency.get(merchant.id, "key-1")
    assert record is not None
    assert record.fingerprint == "fingerprint"
    assert await count(engine, outbox) == 1


async def test_leaving_without_commit_writes_nothing(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    settled = await stored_payment(engine, merchant.id)
    fresh = a_payment(merchant.id)
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(fresh)
        uow.cards.add(fresh.id, b"sealed")
        uow.idempotency.add(a_record(merchant.id))
        stored = await uow.payments.get(settled.id, for_update=True)
        assert stored is not None
        stored.authorize("A1B2C3", datetime.now(UTC))
        await uow.payments.save(stored)

    async with SqlUnitOfWork(engine) as uow:
        assert await uow.payments.get(fresh.id) is None
        assert await uow.payments.get(settled.id) == settled
    assert await count(engine, card_data) == 0
    assert await count(engine, idempotency_keys) == 0


async def fail_midway(uow: SqlUnitOfWork, payment_id: str) -> None:
    async with uow:
        stored = await uow.payments.get(payment_id)
        assert stored is not None
        stored.fail("bank_unavailable", datetime.now(UTC))
        await uow.payments.save(stored)
        raise RuntimeError("boom")


async def test_an_exception_inside_rolls_back(engine: AsyncEngine, merchant: Merchant) -> None:
    payment = await stored_payment(engine, merchant.id)
    uow = SqlUnitOfWork(engine)
    with pytest.raises(RuntimeError, match="boom"):
        await fail_midway(uow, payment.id)
    async with uow:
        assert await uow.payments.get(payment.id) == payment


async def test_the_same_unit_of_work_serves_one_transaction_after_another(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    payment = await stored_payment(engine, merchant.id)
    uow = SqlUnitOfWork(engine)
    async with uow:
        assert await uow.payments.get(payment.id) == payment
    async with uow:
        stored = await uow.payments.get(payment.id, for_update=True)
        assert stored is not None
        stored.authorize("A1B2C3", datetime.now(UTC))
        await uow.payments.save(stored)
        await uow.cards.delete(payment.id)
        await uow.commit()
    async with uow:
        loaded = await uow.payments.get(payment.id)
    assert loaded is not None
    assert loaded.status is PaymentStatus.AUTHORIZED


async def test_foreign_keys_are_enforced(engine: AsyncEngine) -> None:
    orphan = a_payment("mer_missing")
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(orphan)
        with pytest.raises(IntegrityError):
            await uow.commit()


async def test_repositories_refuse_use_outside_a_transaction(engine: AsyncEngine) -> None:
    uow = SqlUnitOfWork(engine)
    with pytest.raises(RuntimeError):
        uow.payments.add(a_payment("mer_x"))


async def test_same_idempotency_key_twice_raises_commit_conflict(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    async with SqlUnitOfWork(engine) as uow:
        uow.idempotency.add(a_record(merchant.id, "order-7"))
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        uow.idempotency.add(a_record(merchant.id, "order-7"))
        with pytest.raises(CommitConflict):
            await uow.commit()


async def test_concurrent_commits_of_one_idempotency_key_let_exactly_one_win(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    lock = asyncio.Lock()
    first, second = SqlUnitOfWork(engine, lock), SqlUnitOfWork(engine, lock)
    async with first, second:
        for uow in (first, second):
            payment = a_payment(merchant.id)
            uow.payments.add(payment)
            uow.idempotency.add(a_record(merchant.id, "same-key"))
        results = await asyncio.gather(first.commit(), second.commit(), return_exceptions=True)

    assert sorted(type(result).__name__ for result in results) == ["CommitConflict", "NoneType"]
    assert await count(engine, idempotency_keys) == 1
    assert await count(engine, payments) == 1  # the loser's payment was rolled back


async def test_same_idempotency_key_for_two_merchants_is_fine(engine: AsyncEngine) -> None:
    one, two = a_merchant("One"), a_merchant("Two")
    async with SqlUnitOfWork(engine) as uow:
        uow.merchants.add(one)
        uow.merchants.add(two)
        uow.idempotency.add(a_record(one.id, "shared"))
        uow.idempotency.add(a_record(two.id, "shared"))
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert (await uow.idempotency.get(one.id, "shared")) is not None
        assert (await uow.idempotency.get(two.id, "shared")) is not None
        assert (await uow.idempotency.get(one.id, "other")) is None
