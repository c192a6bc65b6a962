"""A payment's trip to the bank: the one-statement reads and settle on PostgreSQL and the
unit-of-work ones (SQLite and PostgreSQL) keep the same contract on real databases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.crypto import AesGcmCardVault
from gateway.adapters.orm import (
    card_data,
    events,
    jobs,
    outbox,
    payments,
    pending_payments,
    webhook_deliveries,
)
from gateway.adapters.postgres_direct import DirectPool
from gateway.adapters.postgres_processing import PostgresProcessing
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.application import handlers
from gateway.application.bank import Authorized, BankOutcome, BankRequest
from gateway.application.merchant_events import payment_data
from gateway.application.ports import PaymentProcessing, PaymentWork, PendingPayment
from gateway.application.processing import TransactionalProcessing
from gateway.application.settlement import apply_outcome
from gateway.domain.card import Card
from gateway.domain.commands import MakePayment
from gateway.domain.merchant import Merchant
from gateway.domain.model import JobStatus, Payment, PaymentStatus
from gateway.domain.payment_request import parse_payment_request
from gateway.domain.result import Ok
from gateway.domain.webhooks import EventType
from tests.fixtures.database import a_job, a_payment, stored_merchant
from tests.integration.test_persistence_webhooks import stored_endpoint
from tests.unit.fakes import VAULT_KEY, FixedClock, valid_body


def _card() -> Card:
    parsed = parse_payment_request(valid_body(), FixedClock().now())
    assert isinstance(parsed, Ok)
    return parsed.value.card


VAULT = AesGcmCardVault(VAULT_KEY)
CARD = _card()


@dataclass
class Case:
    engine: AsyncEngine
    processing: PaymentProcessing
    merchant: Merchant

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, asyncio.Lock())


@asynccontextmanager
async def opened(engine: AsyncEngine, one_statement: bool) -> AsyncIterator[Case]:
    merchant = await stored_merchant(engine)
    if not one_statement:
        yield Case(engine, TransactionalProcessing(), merchant)
        return
    direct = DirectPool(engine, size=2)
    try:
        yield Case(engine, PostgresProcessing(direct), merchant)
    finally:
        await direct.close()


@pytest.fixture
async def case(store_engine: tuple[AsyncEngine, bool]) -> AsyncIterator[Case]:
    async with opened(*store_engine) as case:
        yield case


@pytest.fixture(params=[False, True], ids=["unit-of-work", "one-statement"])
async def pg_case(request: pytest.FixtureRequest, pg_engine: AsyncEngine) -> AsyncIterator[Case]:
    async with opened(pg_engine, request.param) as case:
        yield case


@pytest.fixture
async def one_statement(pg_engine: AsyncEngine) -> AsyncIterator[Case]:
    async with opened(pg_engine, one_statement=True) as case:
        yield case


async def stored(case: Case, *, card: bool = True, pending: bool = False) -> MakePayment:
    """A payment as `request_payment` stores it; `pending`: the bank has answered 202."""
    payment = a_payment(case.merchant.id, reference="order-1", metadata={"b": "2", "a": "1"})
    job = a_job(payment)
    async with case.uow() as uow:
        uow.payments.add(payment)
        uow.jobs.add(job)
        if card:
            uow.cards.add(payment.id, VAULT.seal(payment.id, CARD))
        if pending:
            now = datetime.now(UTC)
            uow.pending_payments.add(
                PendingPayment(payment.id, job.id, payment.merchant_id, now, now)
            )
        await uow.commit()
    return MakePayment(payment.id, job.id, payment.merchant_id)


async def rows(engine: AsyncEngine, table: Any, *where: Any) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        found = await connection.execute(select(table).where(*where))
        return [dict(row) for row in found.mappings()]


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def loaded(case: Case, cmd: MakePayment) -> PaymentWork:
    work = await case.processing.load(cmd.payment_id, cmd.job_id, case.uow())
    assert work is not None
    return work


async def settle(case: Case, work: PaymentWork, code: str = "A1B2C3") -> tuple[bool, Payment]:
    payment, job = work.payment, work.job
    assert job is not None
    apply_outcome(payment, job, Authorized(code), datetime.now(UTC))
    return await case.processing.settle(work, payment, job, case.uow()), payment


async def test_load_of_an_unknown_payment_is_none(case: Case) -> None:
    assert await case.processing.load("pay_missing", "job_missing", case.uow()) is None


async def test_load_reads_the_payment_its_job_and_card_as_the_repositories_do(case: Case) -> None:
    cmd = await stored(case)

    work = await loaded(case, cmd)

    async with case.uow() as uow:
        assert work.payment == await uow.payments.get(cmd.payment_id)
        assert work.job == await uow.jobs.get(cmd.job_id)
    assert work.sealed_card is not None
    assert VAULT.open(cmd.payment_id, work.sealed_card) == Ok(CARD)
    assert work.waiting is False


async def test_load_sees_a_payment_waiting_for_the_banks_callback(case: Case) -> None:
    work = await loaded(case, await stored(case, card=False, pending=True))

    assert work.sealed_card is None
    assert work.waiting is True


async def test_one_statement_load_reads_the_merchants_endpoints_oldest_first(
    one_statement: Case,
) -> None:
    case = one_statement
    first, gone, last = [await stored_endpoint(case.engine, case.merchant.id) for _ in range(3)]
    await stored_endpoint(case.engine, (await stored_merchant(case.engine, "Other")).id)
    async with case.uow() as uow:
        await uow.webhook_endpoints.delete(gone.id, datetime.now(UTC))
        await uow.commit()

    work = await loaded(case, await stored(case))

    assert work.endpoints == (first, last)


async def test_settle_stores_payment_job_and_events_and_drops_card_and_pending_row(
    case: Case,
) -> None:
    everything = await stored_endpoint(case.engine, case.merchant.id)
    await stored_endpoint(case.engine, case.merchant.id, (EventType.PAYMENT_DECLINED,))
    cmd = await stored(case, pending=True)

    applied, payment = await settle(case, await loaded(case, cmd))

    assert applied is True
    async with case.uow() as uow:
        stored_payment = await uow.payments.get(cmd.payment_id)
        stored_job = await uow.jobs.get(cmd.job_id)
        assert await uow.cards.get(cmd.payment_id) is None
        assert await uow.pending_payments.get(cmd.payment_id) is None
    assert stored_payment == payment
    assert stored_payment.status is PaymentStatus.AUTHORIZED
    assert stored_payment.authorization_code == "A1B2C3"
    assert stored_job is not None
    assert stored_job.status is JobStatus.COMPLETED
    assert stored_job.completed_at == payment.updated_at
    [event] = await rows(case.engine, events)
    assert event["type"] == "payment.authorized"
    assert event["data"] == payment_data(stored_payment)
    [delivery] = await rows(case.engine, webhook_deliveries)
    assert (delivery["endpoint_id"], delivery["event_id"]) == (everything.id, event["id"])
    assert delivery["status"] == "pending"
    sent = await rows(case.engine, outbox, outbox.c.kind == "DeliverWebhook")
    assert [message["payload"] for message in sent] == [
        {"delivery_id": delivery["id"], "attempt": "1"}
    ]


async def test_settle_stores_nothing_once_the_payment_is_final(case: Case) -> None:
    cmd = await stored(case)
    work = await loaded(case, cmd)
    first, _ = await settle(case, await loaded(case, cmd), "FIRST1")

    second, _ = await settle(case, work, "SECOND")

    assert (first, second) == (True, False)
    [payment] = await rows(case.engine, payments)
    assert payment["authorization_code"] == "FIRST1"
    assert await count(case.engine, events) == 1


async def test_settle_waits_for_a_transaction_holding_the_payment_and_then_finds_it_final(
    pg_case: Case,
) -> None:
    case = pg_case
    cmd = await stored(case)
    work = await loaded(case, cmd)
    async with case.uow() as callback:  # the bank's callback, settling it meanwhile
        payment = await callback.payments.get(cmd.payment_id, for_update=True)
        assert payment is not None
        payment.decline("do_not_honor", datetime.now(UTC))
        await callback.payments.save(payment)
        racing = asyncio.create_task(settle(case, work))
        await asyncio.sleep(0.3)
        assert not racing.done()
        await callback.commit()

    applied, _ = await racing

    assert applied is False
    [stored_payment] = await rows(case.engine, payments)
    assert stored_payment["status"] == "declined"


async def test_one_statement_settle_stores_nothing_when_an_endpoint_came_since_load(
    one_statement: Case,
) -> None:
    case = one_statement
    cmd = await stored(case)
    work = await loaded(case, cmd)
    await stored_endpoint(case.engine, case.merchant.id)

    applied, _ = await settle(case, work)

    assert applied is False
    [payment] = await rows(case.engine, payments)
    assert payment["status"] == "pending"
    assert await count(case.engine, card_data) == 1
    assert await count(case.engine, events) == 0


class _BankAddingAnEndpoint:
    """Authorizes, but first the merchant registers an endpoint (while the bank thinks)."""

    def __init__(self, case: Case) -> None:
        self._case = case

    async def authorize(self, request: BankRequest) -> BankOutcome:
        await stored_endpoint(self._case.engine, self._case.merchant.id)
        return Authorized("LATE01")

    async def lookup(self, idempotency_key: str) -> BankOutcome:
        raise AssertionError("not expected")


async def test_make_payment_sends_the_event_to_an_endpoint_registered_during_the_bank_call(
    case: Case,
) -> None:
    cmd = await stored(case)
    deps = handlers.MakePaymentDeps(
        FixedClock(datetime.now(UTC) + timedelta(seconds=1)),
        VAULT,
        _BankAddingAnEndpoint(case),
        processing=case.processing,
    )

    result = await handlers.make_payment(cmd, case.uow(), deps=deps)

    assert isinstance(result, Ok)
    assert result.value.status is PaymentStatus.AUTHORIZED
    [job] = await rows(case.engine, jobs)
    assert job["status"] == "completed"
    assert await count(case.engine, webhook_deliveries) == 1
    assert await count(case.engine, pending_payments) == 0


async def test_payments_loaded_and_settled_at_the_same_time_each_get_their_own_answer(
    case: Case,
) -> None:
    await stored_endpoint(case.engine, case.merchant.id)
    first, second, third = [await stored(case) for _ in range(3)]
    stale = await loaded(case, first)
    assert (await settle(case, await loaded(case, first), "FIRST1"))[0] is True

    works = await asyncio.gather(
        *(case.processing.load(cmd.payment_id, cmd.job_id, case.uow()) for cmd in (first, second)),
        case.processing.load("pay_unknown", third.job_id, case.uow()),
        case.processing.load(third.payment_id, third.job_id, case.uow()),
    )
    assert works[2] is None
    assert [work.payment.id for work in works if work is not None] == [
        first.payment_id,
        second.payment_id,
        third.payment_id,
    ]
    assert works[0] is not None
    assert works[0].payment.status is PaymentStatus.AUTHORIZED

    settled = await asyncio.gather(
        settle(case, stale, "STALE1"),
        *(settle(case, work) for work in (works[1], works[3]) if work is not None),
    )

    assert [applied for applied, _ in settled] == [False, True, True]
    stored_payments = {row["id"]: row for row in await rows(case.engine, payments)}
    assert stored_payments[first.payment_id]["authorization_code"] == "FIRST1"
    assert {row["status"] for row in stored_payments.values()} == {"authorized"}
    assert {row["status"] for row in await rows(case.engine, jobs)} == {"completed"}
    assert await count(case.engine, card_data) == 0
    stored_events = await rows(case.engine, events)
    assert sorted(event["payment_id"] for event in stored_events) == sorted(stored_payments)
    deliveries = await rows(case.engine, webhook_deliveries)
    assert sorted((d["payment_id"], d["event_id"]) for d in deliveries) == sorted(
        (event["payment_id"], event["id"]) for event in stored_events
    )
    sent = await rows(case.engine, outbox, outbox.c.kind == "DeliverWebhook")
    assert sorted(message["payload"]["delivery_id"] for message in sent) == sorted(
        delivery["id"] for delivery in deliveries
    )


class _CountingPool(DirectPool):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, size=2)
        self.statements: list[str] = []
        self.batches: list[tuple[str, int]] = []  # as the processing reports them

    async def fetch(self, event: str, sql: str, *arguments: Any) -> list[Any]:
        self.statements.append(event)
        return await super().fetch(event, sql, *arguments)


class _SameEventIds:
    """Every event gets the same id: the second one stored breaks the primary key."""

    def new(self, prefix: str) -> str:
        return f"{prefix}_same" if prefix == "evt" else f"{prefix}_{id(object())}"


@pytest.fixture
async def counted(pg_engine: AsyncEngine) -> AsyncIterator[tuple[Case, _CountingPool]]:
    merchant = await stored_merchant(pg_engine)
    pool = _CountingPool(pg_engine)

    def observe(statement: str, payments: int) -> None:
        pool.batches.append((statement, payments))

    processing = PostgresProcessing(pool, ids=_SameEventIds(), observe_batch=observe)
    try:
        yield Case(pg_engine, processing, merchant), pool
    finally:
        await pool.close()


async def test_one_statement_loads_and_settles_many_payments_at_a_time(
    counted: tuple[Case, _CountingPool],
) -> None:
    case, pool = counted
    commands = [await stored(case) for _ in range(20)]

    works = await asyncio.gather(*(loaded(case, cmd) for cmd in commands))
    assert pool.statements == ["load"]
    authorized = Authorized("A1B2C3")
    for work in works:
        assert work.job is not None
        apply_outcome(work.payment, work.job, authorized, datetime.now(UTC))
    one = works[0]
    assert one.job is not None
    assert await case.processing.settle(one, one.payment, one.job, case.uow()) is True

    assert pool.statements == ["load", "settle"]
    assert pool.batches == [("load", 20), ("settle", 1)]
    assert await count(case.engine, events) == 1


async def test_one_statement_settle_of_a_batch_postgres_refuses_goes_one_payment_at_a_time(
    counted: tuple[Case, _CountingPool],
) -> None:
    case, pool = counted
    commands = [await stored(case) for _ in range(2)]
    works = await asyncio.gather(*(loaded(case, cmd) for cmd in commands))

    results = await asyncio.gather(*(settle(case, work) for work in works), return_exceptions=True)

    assert pool.statements == ["load", "settle", "settle", "settle"]
    applied, refused = results
    assert isinstance(applied, tuple)
    assert applied[0] is True
    assert isinstance(refused, asyncpg.UniqueViolationError)
    statuses = {row["id"]: row["status"] for row in await rows(case.engine, payments)}
    assert statuses == {commands[0].payment_id: "authorized", commands[1].payment_id: "pending"}
    assert await count(case.engine, card_data) == 1


class _CapturingPool(DirectPool):
    """Keeps the statements and arguments the processing sends."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, size=2)
        self.sent: list[tuple[str, str, tuple[Any, ...]]] = []

    async def fetch(self, event: str, sql: str, *arguments: Any) -> list[Any]:
        self.sent.append((event, sql, arguments))
        return await super().fetch(event, sql, *arguments)


def _loops(node: dict[str, Any], relation: str) -> int:
    """Times the plan under `node` read `relation`."""
    own = node["Actual Loops"] if node.get("Relation Name") == relation else 0
    return own + sum(_loops(child, relation) for child in node.get("Plans", ()))


async def test_one_statement_settle_looks_up_the_endpoints_once_per_payment_whatever_the_plan(
    pg_engine: AsyncEngine,
) -> None:
    """A plan made while `payments` was small reads every pending payment. The check that
    the merchant's endpoints are those `load` read must still run once per payment of
    the batch, not once per row read: here, with index scans off, over 200 pending ones."""
    merchant = await stored_merchant(pg_engine)
    await stored_endpoint(pg_engine, merchant.id)
    pool = _CapturingPool(pg_engine)
    case = Case(pg_engine, PostgresProcessing(pool), merchant)
    try:
        commands = [await stored(case) for _ in range(200)]
        works = await asyncio.gather(*(loaded(case, cmd) for cmd in commands[:3]))
        for work in works:
            assert work.job is not None
            apply_outcome(work.payment, work.job, Authorized("A1B2C3"), datetime.now(UTC))
        await asyncio.gather(
            *(case.processing.settle(w, w.payment, w.job, case.uow()) for w in works if w.job)
        )
    finally:
        await pool.close()
    [(_, sql, arguments)] = [sent for sent in pool.sent if sent[0] == "settle"]

    async with pg_engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        async with raw.transaction():
            await raw.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
            found = await raw.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *arguments)
            [plan] = json.loads(found) if isinstance(found, str) else found  # SQLAlchemy's codec
            await raw.execute("ROLLBACK; BEGIN")  # ANALYZE ran it: change nothing

    assert _loops(plan["Plan"], "payments") >= 1
    assert _loops(plan["Plan"], "webhook_endpoints") <= len(works)
