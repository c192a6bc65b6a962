"""Many writers at once: SQLite's one-writer rule and PostgreSQL's row locks."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.database import SQLITE_BUSY_TIMEOUT_MS, create_engine
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.application.ports import IdempotencyRecord
from gateway.domain.commands import MakePayment
from gateway.domain.merchant import Merchant
from gateway.domain.model import Payment, PaymentStatus
from tests.fixtures.database import a_job, a_payment, ids, stored_merchant, stored_payment


async def accept(engine: AsyncEngine, lock: asyncio.Lock, merchant_id: str, key: str) -> None:
    """What `request_payment` writes, with a read first."""
    async with SqlUnitOfWork(engine, lock) as uow:
        assert await uow.idempotency.get(merchant_id, key) is None
        payment = a_payment(merchant_id)
        job = a_job(payment)
        uow.payments.add(payment)
        uow.jobs.add(job)
        uow.cards.add(payment.id, b"sealed")
        uow.outbox.add(MakePayment(payment.id, job.id, merchant_id))
        now = datetime.now(UTC)
        uow.idempotency.add(IdempotencyRecord(merchant_id, key, "f", job.id, payment.id, now))
        await uow.commit()


async def settle(engine: AsyncEngine, lock: asyncio.Lock, payment_id: str) -> None:
    """What `make_payment` does: a read-only transaction, a pause, then the write."""
    uow = SqlUnitOfWork(engine, lock)
    async with uow:
        assert await uow.payments.get(payment_id) is not None
        assert await uow.cards.get(payment_id) is None
    await asyncio.sleep(0.01)  # the bank call
    async with uow:
        payment = await uow.payments.get(payment_id, for_update=True)
        assert payment is not None
        payment.authorize("A1B2C3", datetime.now(UTC))
        await uow.payments.save(payment)
        await uow.cards.delete(payment_id)
        await uow.commit()


async def test_fifty_concurrent_writers_on_sqlite_all_succeed(sqlite_engine: AsyncEngine) -> None:
    lock = asyncio.Lock()
    merchant = await stored_merchant(sqlite_engine)
    existing = [await stored_payment(sqlite_engine, merchant.id) for _ in range(25)]

    async with asyncio.timeout(60):
        await asyncio.gather(
            *(accept(sqlite_engine, lock, merchant.id, f"key-{n}") for n in range(25)),
            *(settle(sqlite_engine, lock, payment.id) for payment in existing),
        )

    async with SqlUnitOfWork(sqlite_engine, lock) as uow:
        for payment in existing:
            loaded = await uow.payments.get(payment.id)
            assert loaded is not None
            assert loaded.status is PaymentStatus.AUTHORIZED
        for n in range(25):
            assert await uow.idempotency.get(merchant.id, f"key-{n}") is not None
    assert not lock.locked()


async def read_for_update_then_hold(
    engine: AsyncEngine, lock: asyncio.Lock, payment: Payment, holding: asyncio.Event
) -> None:
    async with SqlUnitOfWork(engine, lock) as uow:
        stored = await uow.payments.get(payment.id, for_update=True)
        assert stored is not None
        holding.set()
        await asyncio.sleep(0.3)
        stored.decline("card_declined", datetime.now(UTC))
        await uow.payments.save(stored)
        await uow.commit()


async def test_a_payment_read_for_update_waits_for_the_writer_before_it(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    """Two settlements of one payment: the second sees the first one's outcome."""
    lock = asyncio.Lock()
    payment = await stored_payment(engine, merchant.id)
    holding = asyncio.Event()
    first = asyncio.create_task(read_for_update_then_hold(engine, lock, payment, holding))
    await holding.wait()

    async with asyncio.timeout(10), SqlUnitOfWork(engine, lock) as uow:
        seen = await uow.payments.get(payment.id, for_update=True)
    await first

    assert seen is not None
    assert seen.status is PaymentStatus.DECLINED


async def test_a_rolled_back_writer_releases_the_sqlite_write_lock(
    sqlite_engine: AsyncEngine,
) -> None:
    lock = asyncio.Lock()
    merchant = await stored_merchant(sqlite_engine)
    payment = await stored_payment(sqlite_engine, merchant.id)
    async with SqlUnitOfWork(sqlite_engine, lock) as uow:
        await uow.payments.get(payment.id, for_update=True)
        assert lock.locked()
    assert not lock.locked()
    async with SqlUnitOfWork(sqlite_engine, lock) as uow:
        uow.merchants.add(Merchant(ids.new("mer"), "Next", datetime.now(UTC)))
        await uow.commit()
        assert not lock.locked()


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    sqlite_engine: AsyncEngine,
) -> None:
    async with sqlite_engine.connect() as connection:
        journal = await connection.exec_driver_sql("PRAGMA journal_mode")
        foreign_keys = await connection.exec_driver_sql("PRAGMA foreign_keys")
        busy_timeout = await connection.exec_driver_sql("PRAGMA busy_timeout")
        assert journal.scalar() == "wal"
        assert foreign_keys.scalar() == 1
        assert busy_timeout.scalar() == SQLITE_BUSY_TIMEOUT_MS


async def test_a_connection_switching_a_new_file_to_wal_waits_for_a_writer_it_blocks(
    tmp_path: Path,
) -> None:
    """The writer holds the file's reserved lock; the new connection takes the shared one
    to switch the file to WAL. When the writer commits, each waits for the other, and
    SQLite answers the connection "database is locked" at once instead of calling its
    busy handler. The connection lets go and tries again, so both succeed."""
    path = tmp_path / "gateway.db"
    writer = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("CREATE TABLE earlier (x INTEGER)")

        async def journal_mode() -> object:
            async with engine.connect() as connection:
                return await connection.scalar(text("PRAGMA journal_mode"))

        connecting = asyncio.create_task(journal_mode())
        await asyncio.sleep(0.2)  # the connection now holds the shared lock and waits
        await asyncio.to_thread(writer.execute, "COMMIT")
        assert await asyncio.wait_for(connecting, 10) == "wal"
    finally:
        writer.close()
        await engine.dispose()
