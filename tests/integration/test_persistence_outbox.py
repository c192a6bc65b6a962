"""The outbox: written by the unit of work, claimed and marked by the relay's store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.orm import outbox
from gateway.adapters.outbox import SqlOutboxStore
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.domain.commands import MakePayment
from tests.fixtures.database import stored_merchant, stored_payment


async def enqueue(engine: AsyncEngine, how_many: int) -> list[MakePayment]:
    commands = [MakePayment(f"pay_{n}", f"job_{n}", "mer_1") for n in range(how_many)]
    for command in commands:  # one commit each: ids and times ascend
        async with SqlUnitOfWork(engine) as uow:
            uow.outbox.add(command)
            await uow.commit()
    return commands


async def test_claim_returns_unsent_messages_oldest_first(engine: AsyncEngine) -> None:
    commands = await enqueue(engine, 5)
    store = SqlOutboxStore(engine)

    async with store.claim(3) as batch:
        first = batch.messages
        await batch.mark_sent()
    async with store.claim(10) as batch:
        rest = batch.messages

    assert [m.payload["payment_id"] for m in first] == ["pay_0", "pay_1", "pay_2"]
    assert [m.payload["payment_id"] for m in rest] == ["pay_3", "pay_4"]
    assert first[0].kind == "MakePayment"
    assert first[0].payload == {"payment_id": "pay_0", "job_id": "job_0", "merchant_id": "mer_1"}
    assert first[0].id.startswith("msg_")
    assert first[0].created_at is not None
    assert first[0].created_at.tzinfo is not None
    assert len(commands) == 5


async def test_message_is_written_with_its_payment(engine: AsyncEngine) -> None:
    merchant = await stored_merchant(engine)
    payment = await stored_payment(engine, merchant.id)
    async with SqlUnitOfWork(engine) as uow:
        uow.outbox.add(MakePayment(payment.id, "job_x", merchant.id))
        await uow.commit()

    async with SqlOutboxStore(engine).claim(10) as batch:
        assert [m.payload["payment_id"] for m in batch.messages] == [payment.id]


async def claim_and_fail(store: SqlOutboxStore) -> None:
    async with store.claim(10) as batch:
        assert len(batch.messages) == 2
        raise RuntimeError("the broker went away")


async def test_claim_left_unmarked_leaves_messages_unsent(engine: AsyncEngine) -> None:
    await enqueue(engine, 2)
    store = SqlOutboxStore(engine)

    with pytest.raises(RuntimeError, match="broker"):
        await claim_and_fail(store)
    async with store.claim(10) as batch:
        again = batch.messages

    assert len(again) == 2
    assert await store.backlog() == (2, pytest.approx(0.0, abs=5))


async def test_backlog_counts_unsent_and_ages_the_oldest(engine: AsyncEngine) -> None:
    store = SqlOutboxStore(engine)
    assert await store.backlog() == (0, 0.0)
    await enqueue(engine, 3)
    async with engine.begin() as connection:
        old = (await connection.execute(outbox.select().order_by(outbox.c.id))).first()
        assert old is not None
        earlier = old.created_at - timedelta(seconds=90)
        await connection.execute(
            update(outbox).where(outbox.c.id == old.id).values(created_at=earlier)
        )

    unsent, age = await store.backlog()

    assert unsent == 3
    assert 90 <= age < 120


async def test_purge_deletes_only_messages_sent_long_ago(engine: AsyncEngine) -> None:
    await enqueue(engine, 3)
    store = SqlOutboxStore(engine)
    async with store.claim(2) as batch:
        await batch.mark_sent()

    assert await store.purge_sent(timedelta(hours=1)) == 0
    assert await store.purge_sent(timedelta(seconds=-1)) == 2
    assert (await store.backlog())[0] == 1


async def test_concurrent_claims_on_postgres_get_disjoint_messages(pg_engine: AsyncEngine) -> None:
    await enqueue(pg_engine, 6)
    relay_a, relay_b = SqlOutboxStore(pg_engine), SqlOutboxStore(pg_engine)

    async with relay_a.claim(3) as batch_a, relay_b.claim(10) as batch_b:
        ids_a = {m.id for m in batch_a.messages}
        ids_b = {m.id for m in batch_b.messages}
        await batch_b.mark_sent()

    assert len(ids_a) == 3
    assert len(ids_b) == 3
    assert not ids_a & ids_b
    assert await relay_a.backlog() == (3, pytest.approx(0.0, abs=5))


async def test_handler_can_write_while_a_sqlite_claim_is_open(sqlite_engine: AsyncEngine) -> None:
    """Embedded mode runs the handler inside the claim: sharing the write lock must not
    deadlock."""
    lock = asyncio.Lock()
    merchant = await stored_merchant(sqlite_engine)
    payment = await stored_payment(sqlite_engine, merchant.id)
    async with SqlUnitOfWork(sqlite_engine, lock) as uow:
        uow.outbox.add(MakePayment(payment.id, "job_x", merchant.id))
        await uow.commit()
    store = SqlOutboxStore(sqlite_engine, lock)

    async with asyncio.timeout(10), store.claim(10) as batch:
        async with SqlUnitOfWork(sqlite_engine, lock) as uow:
            stored = await uow.payments.get(payment.id, for_update=True)
            assert stored is not None
            await uow.cards.delete(payment.id)
            await uow.commit()
        await batch.mark_sent()

    assert await store.backlog() == (0, 0.0)
