"""`SweepPendingPayments` through the real mediator, on a fixed clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.application.bank import (
    Authorized,
    BankOutcome,
    Declined,
    Pending,
    Unavailable,
    Unknown,
)
from gateway.application.pending_sweep import run_sweeper
from gateway.domain.commands import SweepPendingPayments, SweepReport
from gateway.domain.model import JobStatus, PaymentStatus
from tests.unit.bank_callbacks_support import bank_event, pending_payment, signed
from tests.unit.fakes import FakeBank, Gateway

TIMEOUT_S = 30


async def sweep(gateway: Gateway, limit: int = 100) -> SweepReport:
    return await gateway.mediator.send(SweepPendingPayments(limit))


def pending_gateway(lookup: BankOutcome) -> Gateway:
    return Gateway(bank=FakeBank(Pending(), lookup=lookup), pending_timeout_s=TIMEOUT_S)


async def test_nothing_is_looked_up_before_the_timeout() -> None:
    gateway = pending_gateway(Authorized("LATE01"))
    cmd = await pending_payment(gateway)
    gateway.clock.advance(TIMEOUT_S - 1)

    assert await sweep(gateway) == SweepReport(claimed=0, settled=0)
    assert gateway.bank.lookups == []
    assert gateway.store.payments[cmd.payment_id].status is PaymentStatus.PENDING


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Authorized("LATE01"), PaymentStatus.AUTHORIZED),
        (Declined("do_not_honor"), PaymentStatus.DECLINED),
    ],
    ids=["authorized", "declined"],
)
async def test_an_overdue_payment_is_settled_from_the_status_lookup(
    answer: BankOutcome, status: PaymentStatus
) -> None:
    gateway = pending_gateway(answer)
    cmd = await pending_payment(gateway)
    gateway.clock.advance(TIMEOUT_S)

    assert await sweep(gateway) == SweepReport(claimed=1, settled=1)

    payment, job = gateway.store.payments[cmd.payment_id], gateway.store.jobs[cmd.job_id]
    assert gateway.bank.lookups == [cmd.payment_id]
    assert (payment.status, payment.updated_at) == (status, gateway.clock.now())
    assert (job.status, job.completed_at) == (JobStatus.COMPLETED, gateway.clock.now())
    assert gateway.store.pending_payments == {}


@pytest.mark.parametrize(
    "answer", [Unknown(), Pending(), Unavailable("no answer")], ids=["404", "pending", "down"]
)
async def test_no_answer_yet_asks_again_after_another_timeout(answer: BankOutcome) -> None:
    gateway = pending_gateway(answer)
    cmd = await pending_payment(gateway)
    gateway.clock.advance(TIMEOUT_S)

    assert await sweep(gateway) == SweepReport(claimed=1, settled=0)

    pending = gateway.store.pending_payments[cmd.payment_id]
    assert pending.lookups == 1
    assert pending.next_lookup_at == gateway.clock.now() + timedelta(seconds=TIMEOUT_S)
    assert gateway.store.payments[cmd.payment_id].status is PaymentStatus.PENDING
    assert gateway.store.jobs[cmd.job_id].status is JobStatus.CREATED
    gateway.clock.advance(TIMEOUT_S - 1)
    assert (await sweep(gateway)).claimed == 0
    gateway.clock.advance(1)
    assert (await sweep(gateway)).claimed == 1
    assert gateway.store.pending_payments[cmd.payment_id].lookups == 2


async def test_after_24_hours_without_an_answer_the_payment_fails_with_bank_unavailable() -> None:
    gateway = pending_gateway(Pending())
    cmd = await pending_payment(gateway)
    gateway.clock.advance(24 * 3600)
    await sweep(gateway)
    assert gateway.store.payments[cmd.payment_id].status is PaymentStatus.PENDING  # not over 24 h
    gateway.clock.advance(TIMEOUT_S)

    assert await sweep(gateway) == SweepReport(claimed=1, settled=1)

    payment, job = gateway.store.payments[cmd.payment_id], gateway.store.jobs[cmd.job_id]
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "bank_unavailable")
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code == "bank_unavailable"
    assert gateway.store.pending_payments == {}


async def test_a_final_answer_after_24_hours_still_settles_the_payment() -> None:
    gateway = pending_gateway(Authorized("LATE01"))
    cmd = await pending_payment(gateway)
    gateway.clock.advance(25 * 3600)
    await sweep(gateway)
    assert gateway.store.payments[cmd.payment_id].status is PaymentStatus.AUTHORIZED


class CallbackDuringLookup(FakeBank):
    """The bank's callback arrives while the sweep waits for the status lookup."""

    def __init__(self, gateway_ref: list[Gateway]) -> None:
        super().__init__(Pending(), lookup=Pending())
        self._gateway_ref = gateway_ref
        self.nested: list[SweepReport] = []

    async def lookup(self, idempotency_key: str) -> BankOutcome:
        gateway = self._gateway_ref[0]
        self.nested.append(await sweep(gateway))  # another sweeper, meanwhile
        event = bank_event(idempotency_key, "declined")
        await gateway.mediator.send(signed(event, gateway.clock.now()))
        return await super().lookup(idempotency_key)


async def test_a_callback_during_the_lookup_wins_and_a_claimed_row_is_not_taken_twice() -> None:
    ref: list[Gateway] = []
    bank = CallbackDuringLookup(ref)
    gateway = Gateway(bank=bank, pending_timeout_s=TIMEOUT_S)
    ref.append(gateway)
    cmd = await pending_payment(gateway)
    gateway.clock.advance(TIMEOUT_S)

    assert await sweep(gateway) == SweepReport(claimed=1, settled=0)

    assert bank.nested == [SweepReport(claimed=0, settled=0)]
    payment = gateway.store.payments[cmd.payment_id]
    assert (payment.status, payment.decline_code) == (PaymentStatus.DECLINED, "do_not_honor")
    assert gateway.store.pending_payments == {}


class FailingLookup(FakeBank):
    async def lookup(self, idempotency_key: str) -> BankOutcome:
        raise ConnectionError("boom")


async def test_a_lookup_that_raises_is_asked_again_later() -> None:
    gateway = Gateway(bank=FailingLookup(Pending()), pending_timeout_s=TIMEOUT_S)
    cmd = await pending_payment(gateway)
    gateway.clock.advance(TIMEOUT_S)

    assert await sweep(gateway) == SweepReport(claimed=1, settled=0)
    assert gateway.store.pending_payments[cmd.payment_id].lookups == 1


async def test_a_sweep_claims_at_most_its_limit_earliest_due_first() -> None:
    gateway = pending_gateway(Authorized("LATE01"))
    first = await pending_payment(gateway, "key-1")
    gateway.clock.advance(1)
    for key in ("key-2", "key-3"):
        await pending_payment(gateway, key)
    gateway.clock.advance(TIMEOUT_S)

    assert await sweep(gateway, limit=1) == SweepReport(claimed=1, settled=1)
    assert gateway.bank.lookups == [first.payment_id]
    assert await sweep(gateway, limit=5) == SweepReport(claimed=2, settled=2)


async def test_the_sweeper_loop_sweeps_until_stopped_and_survives_errors() -> None:
    calls: list[int] = []
    errors: list[Exception] = []

    async def flaky(cmd: SweepPendingPayments) -> SweepReport:
        calls.append(cmd.limit)
        if len(calls) == 2:
            raise RuntimeError("database down")
        if len(calls) == 4:
            stop.set()
        return SweepReport(0, 0)

    stop = asyncio.Event()
    sweeper = run_sweeper(flaky, stop, interval_s=0.01, on_error=errors.append)
    await asyncio.wait_for(sweeper, timeout=2)

    assert [type(e).__name__ for e in errors] == ["RuntimeError"]
    assert set(calls) == {100}
