"""`MakePayment` through the real mediator: each bank outcome settles payment and job."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gateway.application.bank import (
    Authorized,
    BankOutcome,
    Declined,
    Pending,
    Rejected,
    Unavailable,
    Unknown,
)
from gateway.domain.commands import MakePayment, PaymentAccepted, RequestPayment
from gateway.domain.errors import NotFound
from gateway.domain.model import JobError, JobStatus, Payment, PaymentStatus
from gateway.domain.result import Err, Ok
from tests.unit.fakes import FakeBank, Gateway, valid_body


async def accept(gateway: Gateway, **overrides: object) -> MakePayment:
    result = await gateway.mediator.send(RequestPayment("mer_1", "key-1", valid_body(**overrides)))
    assert isinstance(result, Ok)
    assert isinstance(result.value, PaymentAccepted)
    job = result.value.job
    return MakePayment(job.payment_id, job.id, job.merchant_id)


async def run(gateway: Gateway, cmd: MakePayment) -> Payment:
    result = await gateway.mediator.send(cmd)
    assert isinstance(result, Ok), result
    return result.value


SETTLED = [
    (Authorized("AUTH42"), PaymentStatus.AUTHORIZED, JobStatus.COMPLETED, None),
    (Declined("insufficient_funds"), PaymentStatus.DECLINED, JobStatus.COMPLETED, None),
    (Rejected("bad request"), PaymentStatus.FAILED, JobStatus.FAILED, "bank_rejected"),
    (Unavailable("timed out"), PaymentStatus.FAILED, JobStatus.FAILED, "bank_unavailable"),
]


@pytest.mark.parametrize(
    ("outcome", "payment_status", "job_status", "error_code"),
    SETTLED,
    ids=["authorized", "declined", "rejected", "unavailable"],
)
async def test_bank_outcome_settles_payment_and_job_and_deletes_card_data(
    outcome: BankOutcome,
    payment_status: PaymentStatus,
    job_status: JobStatus,
    error_code: str | None,
) -> None:
    gateway = Gateway(bank=FakeBank(outcome))
    cmd = await accept(gateway)
    gateway.clock.advance(2)

    payment = await run(gateway, cmd)

    stored, job = gateway.store.payments[cmd.payment_id], gateway.store.jobs[cmd.job_id]
    assert payment.status is stored.status is payment_status
    assert stored.updated_at == gateway.clock.now()
    assert job.status is job_status
    assert job.completed_at == gateway.clock.now()
    assert (job.error.code if job.error else None) == error_code
    assert stored.failure_code == error_code
    assert cmd.payment_id not in gateway.store.cards


async def test_authorized_payment_keeps_the_authorization_code() -> None:
    gateway = Gateway(bank=FakeBank(Authorized("AUTH42")))
    payment = await run(gateway, await accept(gateway))
    assert (payment.authorization_code, payment.decline_code) == ("AUTH42", None)


async def test_declined_payment_keeps_the_decline_code() -> None:
    gateway = Gateway(bank=FakeBank(Declined("do_not_honor")))
    payment = await run(gateway, await accept(gateway))
    assert (payment.decline_code, payment.authorization_code) == ("do_not_honor", None)


async def test_failed_job_carries_the_bank_message() -> None:
    gateway = Gateway(bank=FakeBank(Unavailable("the bank kept failing")))
    cmd = await accept(gateway)
    await run(gateway, cmd)
    assert gateway.store.jobs[cmd.job_id].error == JobError(
        "bank_unavailable", "the bank kept failing"
    )


async def test_the_bank_gets_the_card_amount_and_the_payment_id_as_idempotency_key() -> None:
    gateway = Gateway()
    cmd = await accept(gateway, card_cvv="987", amount=2500, currency="JPY")
    await run(gateway, cmd)

    [call] = gateway.bank.calls
    assert call.idempotency_key == cmd.payment_id
    assert (call.card_number, call.cvv) == ("4242424242424242", "987")
    assert (call.expiry_month, call.expiry_year) == (12, 2030)
    assert (call.amount, call.currency) == (2500, "JPY")
    assert "4242424242424242" not in repr(call)
    assert "987" not in repr(call)


async def test_pending_answer_leaves_payment_pending_and_job_created() -> None:
    gateway = Gateway(bank=FakeBank(Pending()))
    cmd = await accept(gateway)
    payment = await run(gateway, cmd)

    assert payment.status is gateway.store.payments[cmd.payment_id].status is PaymentStatus.PENDING
    job = gateway.store.jobs[cmd.job_id]
    assert (job.status, job.completed_at) == (JobStatus.CREATED, None)
    assert cmd.payment_id not in gateway.store.cards


async def test_pending_answer_schedules_a_status_lookup_after_the_timeout() -> None:
    gateway = Gateway(bank=FakeBank(Pending()), pending_timeout_s=30)
    cmd = await accept(gateway)
    await run(gateway, cmd)

    pending = gateway.store.pending_payments[cmd.payment_id]
    now = gateway.clock.now()
    assert (pending.job_id, pending.merchant_id) == (cmd.job_id, cmd.merchant_id)
    assert (pending.pending_since, pending.lookups) == (now, 0)
    assert pending.next_lookup_at == now + timedelta(seconds=30)


async def test_a_pending_payment_delivered_again_is_left_to_the_callback_and_the_sweep() -> None:
    gateway = Gateway(bank=FakeBank(Pending(), lookup=Unknown()))
    cmd = await accept(gateway)
    await run(gateway, cmd)
    scheduled = gateway.store.pending_payments[cmd.payment_id]
    gateway.clock.advance(5)

    payment = await run(gateway, cmd)

    assert (len(gateway.bank.calls), gateway.bank.lookups) == (1, [])
    assert payment.status is PaymentStatus.PENDING
    assert gateway.store.pending_payments[cmd.payment_id] == scheduled


async def test_a_payment_without_card_data_nor_pending_timer_is_settled_by_a_lookup() -> None:
    gateway = Gateway(bank=FakeBank(lookup=Authorized("LATE01")))
    cmd = await accept(gateway)
    del gateway.store.cards[cmd.payment_id]  # as left by a gateway older than the timers

    payment = await run(gateway, cmd)

    assert (gateway.bank.calls, gateway.bank.lookups) == ([], [cmd.payment_id])
    assert (payment.status, payment.authorization_code) == (PaymentStatus.AUTHORIZED, "LATE01")
    assert gateway.store.jobs[cmd.job_id].status is JobStatus.COMPLETED


async def test_a_lookup_the_bank_never_saw_fails_the_payment() -> None:
    gateway = Gateway(bank=FakeBank(lookup=Unknown()))
    cmd = await accept(gateway)
    del gateway.store.cards[cmd.payment_id]

    payment = await run(gateway, cmd)

    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "bank_unavailable")
    assert gateway.store.jobs[cmd.job_id].status is JobStatus.FAILED


async def test_running_make_payment_twice_calls_the_bank_once() -> None:
    gateway = Gateway()
    cmd = await accept(gateway)
    first = await run(gateway, cmd)
    gateway.clock.advance(10)
    second = await run(gateway, cmd)

    assert len(gateway.bank.calls) == 1
    assert gateway.bank.lookups == []
    assert second.status is first.status is PaymentStatus.AUTHORIZED
    assert second.updated_at == first.updated_at


async def test_unreadable_card_data_fails_the_payment_without_calling_the_bank() -> None:
    gateway = Gateway()
    cmd = await accept(gateway)
    gateway.store.cards[cmd.payment_id] = b"\x01" + bytes(40)

    payment = await run(gateway, cmd)

    assert gateway.bank.calls == []
    assert (payment.status, payment.failure_code) == (PaymentStatus.FAILED, "bank_rejected")
    assert cmd.payment_id not in gateway.store.cards


async def test_settling_records_one_event() -> None:
    gateway = Gateway(bank=FakeBank(Declined("card_declined")))
    cmd = await accept(gateway)
    await run(gateway, cmd)
    await run(gateway, cmd)
    assert [type(event).__name__ for event in gateway.store.events] == ["PaymentDeclined"]


async def test_an_unknown_payment_is_not_found() -> None:
    gateway = Gateway()
    result = await gateway.mediator.send(MakePayment("pay_missing", "job_missing", "mer_1"))
    assert result == Err(NotFound("payment"))
    assert gateway.bank.calls == []
    assert gateway.store.commits == 0


async def test_bank_answers_for_other_cards_follow_the_script() -> None:
    bank = FakeBank(by_card={"4000000000000002": Declined("card_declined")})
    gateway = Gateway(bank=bank)
    payment = await run(gateway, await accept(gateway, card_number="4000000000000002"))
    assert (payment.status, payment.decline_code) == (PaymentStatus.DECLINED, "card_declined")


async def test_two_deliveries_at_once_settle_the_payment_once() -> None:
    gateway = Gateway()
    cmd = await accept(gateway)
    results = await asyncio.gather(run(gateway, cmd), run(gateway, cmd))

    assert {payment.status for payment in results} == {PaymentStatus.AUTHORIZED}
    assert all(call.idempotency_key == cmd.payment_id for call in gateway.bank.calls)
    assert [type(event).__name__ for event in gateway.store.events] == ["PaymentAuthorized"]
