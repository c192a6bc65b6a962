"""The fake unit of work keeps the promises of the real one the handlers rely on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gateway.application.ports import CommitConflict, IdempotencyRecord
from gateway.domain.card import CardScheme, CardSummary
from gateway.domain.commands import MakePayment
from gateway.domain.model import Job, Payment
from gateway.domain.money import Amount, Currency, Money
from gateway.domain.value_objects import Metadata
from tests.unit.fakes import FakeStore, FakeUnitOfWork

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def payment(payment_id: str = "pay_1") -> Payment:
    card = CardSummary(CardScheme.VISA, "424242", "4242", 12, 2030, None)
    money = Money(Amount(1050), Currency("GBP", 2))
    return Payment(payment_id, "mer_1", money, card, None, Metadata.empty(), NOW, NOW)


def record(merchant: str = "mer_1", key: str = "k") -> IdempotencyRecord:
    return IdempotencyRecord(merchant, key, "f" * 64, "job_1", "pay_1", NOW)


async def test_nothing_is_written_without_a_commit() -> None:
    store = FakeStore()
    async with FakeUnitOfWork(store) as uow:
        uow.payments.add(payment())
        uow.cards.add("pay_1", b"sealed")
        uow.outbox.add(MakePayment("pay_1", "job_1", "mer_1"))
        assert await uow.payments.get("pay_1") is not None, "a transaction sees its own writes"
    assert (store.payments, store.cards, store.outbox, store.commits) == ({}, {}, [], 0)


async def test_a_duplicate_idempotency_key_fails_the_whole_commit() -> None:
    store = FakeStore()
    async with FakeUnitOfWork(store) as uow:
        uow.idempotency.add(record())
        await uow.commit()
    async with FakeUnitOfWork(store) as uow:
        uow.payments.add(payment("pay_2"))
        uow.idempotency.add(record())
        with pytest.raises(CommitConflict):
            await uow.commit()
    assert "pay_2" not in store.payments
    assert store.commits == 1


async def test_the_same_key_for_another_merchant_is_no_conflict() -> None:
    store = FakeStore()
    for merchant in ("mer_1", "mer_2"):
        async with FakeUnitOfWork(store) as uow:
            uow.idempotency.add(record(merchant))
            await uow.commit()
    assert set(store.idempotency) == {("mer_1", "k"), ("mer_2", "k")}


async def test_loaded_aggregates_change_the_store_only_when_saved_and_committed() -> None:
    store = FakeStore()
    async with FakeUnitOfWork(store) as uow:
        uow.payments.add(payment())
        uow.jobs.add(Job("job_1", "mer_1", "pay_1", NOW))
        await uow.commit()
    async with FakeUnitOfWork(store) as uow:
        loaded = await uow.payments.get("pay_1")
        assert loaded is not None
        loaded.authorize("A1", NOW)
    assert store.payments["pay_1"].status == "pending"


async def test_a_row_read_for_update_waits_for_the_other_transaction() -> None:
    store = FakeStore()
    async with FakeUnitOfWork(store) as uow:
        uow.payments.add(payment())
        await uow.commit()
    order: list[str] = []

    async def settle(name: str) -> None:
        async with FakeUnitOfWork(store) as uow:
            loaded = await uow.payments.get("pay_1", for_update=True)
            assert loaded is not None
            order.append(f"{name} read {loaded.status}")
            loaded.authorize(name, NOW)
            await uow.payments.save(loaded)
            await uow.commit()

    await asyncio.gather(settle("first"), settle("second"))
    assert order == ["first read pending", "second read authorized"]
