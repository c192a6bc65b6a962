"""Accepting a payment: the one-statement intake on PostgreSQL and the unit-of-work intake
(SQLite and PostgreSQL) keep the same contract on real databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.orm import card_data, idempotency_keys, jobs, outbox, payments
from gateway.adapters.postgres_direct import DirectPool
from gateway.adapters.postgres_intake import PostgresIntake
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.application.intake import TransactionalIntake
from gateway.application.ports import CommitConflict, IdempotencyRecord, NewPayment, PaymentIntake
from gateway.domain.commands import MakePayment
from gateway.domain.merchant import Merchant
from tests.fixtures.database import a_job, a_payment, stored_merchant

TABLES = (payments, jobs, card_data, outbox, idempotency_keys)


@dataclass
class Case:
    engine: AsyncEngine
    intake: PaymentIntake
    merchant: Merchant
    direct: DirectPool | None = None


@pytest.fixture
async def case(store_engine: tuple[AsyncEngine, bool]) -> AsyncIterator[Case]:
    engine, one_statement = store_engine
    merchant = await stored_merchant(engine)
    if not one_statement:
        yield Case(engine, TransactionalIntake(), merchant)
        return
    direct = DirectPool(engine, size=4)
    yield Case(engine, PostgresIntake(direct), merchant, direct)
    await direct.close()


@pytest.fixture
async def postgres(pg_engine: AsyncEngine) -> AsyncIterator[Case]:
    direct = DirectPool(pg_engine, size=4)
    yield Case(pg_engine, PostgresIntake(direct), await stored_merchant(pg_engine), direct)
    await direct.close()


def a_new_payment(merchant: Merchant, key: str = "key-1", fingerprint: str = "fp") -> NewPayment:
    payment = a_payment(merchant.id, reference="order-1", metadata={"b": "2", "a": "1"})
    job = a_job(payment)
    record = IdempotencyRecord(
        merchant.id, key, fingerprint, job.id, payment.id, payment.created_at
    )
    command = MakePayment(payment.id, job.id, merchant.id)
    return NewPayment(payment, job, b"\x00sealed\xff", command, record)


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table.name: int(await connection.scalar(select(func.count()).select_from(table)) or 0)
            for table in TABLES
        }


async def test_accept_stores_the_five_rows_as_the_repositories_read_them(
    case: Case,
) -> None:
    engine, intake, merchant = case.engine, case.intake, case.merchant
    new = a_new_payment(merchant)

    assert await intake.accept(new, SqlUnitOfWork(engine)) is None

    async with SqlUnitOfWork(engine) as uow:
        assert await uow.payments.get(new.payment.id) == new.payment
        assert await uow.jobs.get(new.job.id) == new.job
        assert await uow.cards.get(new.payment.id) == new.sealed_card
        assert await uow.idempotency.get(merchant.id, "key-1") == new.idempotency
    async with engine.connect() as connection:
        row = (await connection.execute(select(outbox))).mappings().one()
    assert row["kind"] == "MakePayment"
    assert row["sent_at"] is None
    assert dict(row["payload"]) == {
        "payment_id": new.payment.id,
        "job_id": new.job.id,
        "merchant_id": merchant.id,
    }
    assert await counts(engine) == dict.fromkeys((table.name for table in TABLES), 1)


async def test_a_used_key_returns_the_first_record_and_writes_nothing(
    case: Case,
) -> None:
    engine, intake, merchant = case.engine, case.intake, case.merchant
    first = a_new_payment(merchant, fingerprint="first")
    second = a_new_payment(merchant, fingerprint="second")
    await intake.accept(first, SqlUnitOfWork(engine))

    previous = await intake.accept(second, SqlUnitOfWork(engine))

    assert previous == first.idempotency
    assert await counts(engine) == dict.fromkeys((table.name for table in TABLES), 1)


async def test_the_same_key_for_another_merchant_is_another_payment(
    case: Case,
) -> None:
    engine, intake, merchant = case.engine, case.intake, case.merchant
    other = await stored_merchant(engine)
    assert await intake.accept(a_new_payment(merchant), SqlUnitOfWork(engine)) is None
    assert await intake.accept(a_new_payment(other), SqlUnitOfWork(engine)) is None
    assert (await counts(engine))["payments"] == 2


async def test_concurrent_requests_with_one_key_store_one_payment(
    case: Case,
) -> None:
    engine, intake, merchant = case.engine, case.intake, case.merchant
    news = [a_new_payment(merchant) for _ in range(20)]

    async def accept(new: NewPayment) -> IdempotencyRecord | str | None:
        try:
            return await intake.accept(new, SqlUnitOfWork(engine))
        except CommitConflict:
            return "conflict"

    outcomes = await asyncio.gather(*(accept(new) for new in news))

    assert outcomes.count(None) == 1
    winner = news[outcomes.index(None)]
    assert all(o == winner.idempotency or o == "conflict" for o in outcomes if o is not None)
    assert await counts(engine) == dict.fromkeys((table.name for table in TABLES), 1)


async def test_postgres_intake_retries_on_a_fresh_connection_after_the_server_dropped_them(
    postgres: Case,
) -> None:
    engine, intake, merchant = postgres.engine, postgres.intake, postgres.merchant
    assert postgres.direct is not None
    await intake.accept(a_new_payment(merchant, key="warm-up"), SqlUnitOfWork(engine))
    # its own connection only (other tests share the database): the one used last, the
    # one the next statement takes
    pid = await postgres.direct.fetchval("test", "SELECT pg_backend_pid()")
    async with engine.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await asyncio.sleep(0.1)

    assert await intake.accept(a_new_payment(merchant, key="after"), SqlUnitOfWork(engine)) is None
    assert (await counts(engine))["payments"] == 2


async def test_postgres_intake_trying_again_after_a_lost_answer_is_not_a_replay(
    postgres: Case,
) -> None:
    engine, intake, merchant = postgres.engine, postgres.intake, postgres.merchant
    new = a_new_payment(merchant)
    await intake.accept(new, SqlUnitOfWork(engine))

    assert await intake.accept(new, SqlUnitOfWork(engine)) is None
    assert (await counts(engine))["payments"] == 1


async def _terminate_behind(engine: AsyncEngine, locker: int, times: int) -> None:
    """Terminates, `times` times, the backend that waits for `locker`'s lock: an
    administrator's cut in the middle of a statement (57P01 on that statement)."""
    terminate = text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE :locker = ANY(pg_blocking_pids(pid))"
    )
    for _ in range(times):
        terminated = 0
        while not terminated:
            await asyncio.sleep(0.02)
            # a new transaction each time: pg_stat_activity is read once per transaction
            async with engine.connect() as connection:
                terminated = len((await connection.execute(terminate, {"locker": locker})).all())


async def _accept_cut_mid_statement(postgres: Case, key: str, cuts: int) -> None:
    engine, intake, merchant = postgres.engine, postgres.intake, postgres.merchant
    async with engine.connect() as locking:
        await locking.execute(text("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE"))
        locker = int(await locking.scalar(text("SELECT pg_backend_pid()")) or 0)
        accept = asyncio.create_task(
            intake.accept(a_new_payment(merchant, key=key), SqlUnitOfWork(engine))
        )
        await _terminate_behind(engine, locker, cuts)
        await locking.rollback()
    assert await accept is None


async def test_postgres_intake_cut_in_the_middle_of_its_statement_is_tried_again(
    postgres: Case,
) -> None:
    await postgres.intake.accept(
        a_new_payment(postgres.merchant, key="warm-up"), SqlUnitOfWork(postgres.engine)
    )

    await _accept_cut_mid_statement(postgres, "cut-once", cuts=1)

    assert (await counts(postgres.engine))["payments"] == 2


async def test_postgres_intake_cut_on_both_tries_raises_a_connection_error_and_stores_nothing(
    postgres: Case,
) -> None:
    with pytest.raises(ConnectionError):
        await _accept_cut_mid_statement(postgres, "cut-twice", cuts=2)

    assert (await counts(postgres.engine))["payments"] == 0
    assert (
        await postgres.intake.accept(
            a_new_payment(postgres.merchant, key="cut-twice"), SqlUnitOfWork(postgres.engine)
        )
        is None
    )


async def test_postgres_intake_takes_the_payments_that_come_together_in_a_shared_statement(
    pg_engine: AsyncEngine,
) -> None:
    merchant = await stored_merchant(pg_engine)
    sizes: list[int] = []
    direct = DirectPool(pg_engine, size=4)
    intake = PostgresIntake(direct, in_flight=1, observe_batch=lambda _, size: sizes.append(size))
    used = a_new_payment(merchant, key="used", fingerprint="first")
    await intake.accept(used, SqlUnitOfWork(pg_engine))
    news = [a_new_payment(merchant, key=f"key-{n}") for n in range(30)]
    again = a_new_payment(merchant, key="used", fingerprint="second")

    try:
        outcomes = await asyncio.gather(
            *(intake.accept(new, SqlUnitOfWork(pg_engine)) for new in [*news, again])
        )
    finally:
        await direct.close()

    assert outcomes == [None] * 30 + [used.idempotency]
    assert sizes[0] == 1  # alone: it waited for nothing
    assert sum(sizes[1:]) == 31
    assert max(sizes) > 1  # those that came together went together
    assert await counts(pg_engine) == dict.fromkeys((table.name for table in TABLES), 31)
    async with SqlUnitOfWork(pg_engine) as uow:
        for new in news:
            assert await uow.payments.get(new.payment.id) == new.payment
            assert await uow.jobs.get(new.job.id) == new.job
            assert await uow.cards.get(new.payment.id) == new.sealed_card
            assert await uow.idempotency.get(merchant.id, new.idempotency.key) == new.idempotency


async def test_a_shared_statement_postgresql_refuses_is_tried_again_one_payment_at_a_time(
    pg_engine: AsyncEngine,
) -> None:
    merchant = await stored_merchant(pg_engine)
    sizes: list[int] = []
    direct = DirectPool(pg_engine, size=4)
    intake = PostgresIntake(direct, observe_batch=lambda _, size: sizes.append(size))
    first = a_new_payment(merchant, key="first")
    # another key for the same payment and job: its rows break the primary keys
    record = first.idempotency
    clash = replace(first, idempotency=replace(record, key="clash"))
    other = a_new_payment(merchant, key="other")

    try:
        outcomes = await asyncio.gather(
            *(intake.accept(new, SqlUnitOfWork(pg_engine)) for new in (first, clash, other)),
            return_exceptions=True,
        )
    finally:
        await direct.close()

    assert sizes == [3, 1, 1, 1]
    assert outcomes[0] is None
    assert isinstance(outcomes[1], asyncpg.UniqueViolationError)
    assert outcomes[2] is None
    assert await counts(pg_engine) == dict.fromkeys((table.name for table in TABLES), 2)
    async with SqlUnitOfWork(pg_engine) as uow:
        assert await uow.idempotency.get(merchant.id, "clash") is None  # nothing of it stayed


AWKWARD_TEXT = [
    'a quote " and a backslash \\',
    "\\u0041 and \\n as written, not escapes",
    "emoji 🍕, CJK 注文, RTL שלום, combining é",
    '{"json": "inside", "n": [1, 2]}',
    "'; DROP TABLE payments; --",
    "%s %(name)s {} $1 ::text",
]


async def test_postgres_intake_stores_awkward_text_and_bytes_exactly_as_given(
    postgres: Case,
) -> None:
    engine, intake, merchant = postgres.engine, postgres.intake, postgres.merchant
    news = []
    for number, awkward in enumerate(AWKWARD_TEXT):
        payment = a_payment(
            merchant.id,
            reference=awkward,
            holder_name=awkward,
            metadata={awkward: awkward, "controls": "tab\tnewline\n\x01\x1f\x7f"},
        )
        job = a_job(payment)
        record = IdempotencyRecord(
            merchant.id, f"{awkward}-{number}", awkward, job.id, payment.id, payment.created_at
        )
        command = MakePayment(payment.id, job.id, merchant.id)
        sealed = bytes(range(256)) + awkward.encode()  # every byte value, through base64
        news.append(NewPayment(payment, job, sealed, command, record))

    outcomes = await asyncio.gather(*(intake.accept(new, SqlUnitOfWork(engine)) for new in news))

    assert outcomes == [None] * len(news)
    async with SqlUnitOfWork(engine) as uow:
        for new in news:
            assert await uow.payments.get(new.payment.id) == new.payment
            assert await uow.cards.get(new.payment.id) == new.sealed_card
            key = new.idempotency.key
            assert await uow.idempotency.get(merchant.id, key) == new.idempotency
