"""`AbandonPayment` (a dead-lettered `MakePayment`) through the real mediator: the bank's
status lookup decides, so a payment the bank charged is never reported failed."""

from __future__ import annotations

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
from gateway.application.dead_letters import BankUnreachable
from gateway.domain.commands import AbandonPayment, MakePayment, RequestPayment
from gateway.domain.errors import NotFound
from gateway.domain.model import JobStatus, PaymentStatus
from gateway.domain.result import Err, Ok
from tests.unit.fakes import FakeBank, Gateway, valid_body


async def accepted(gateway: Gateway) -> AbandonPayment:
    result = await gateway.mediator.send(RequestPayment("mer_1", "key-1", valid_body()))
    assert isinstance(result, Ok)
    job = result.value.job
    return AbandonPayment(job.payment_id, job.id, job.merchant_id, "delivery_limit")


@pytest.mark.parametrize(
    ("lookup", "status", "job_status", "code"),
    [
        (Authorized("AUTH42"), PaymentStatus.AUTHORIZED, JobStatus.COMPLETED, None),
        (Declined("do_not_honor"), PaymentStatus.DECLINED, JobStatus.COMPLETED, "do_not_honor"),
        (Unknown(), PaymentStatus.FAILED, JobStatus.FAILED, "processing_failed"),
        (Rejected("no such key"), PaymentStatus.FAILED, JobStatus.FAILED, "processing_failed"),
    ],
    ids=["charged", "declined", "never-seen", "refused-lookup"],
)
async def test_a_dead_letter_settles_the_payment_as_the_bank_decided(
    lookup: BankOutcome, status: PaymentStatus, job_status: JobStatus, code: str | None
) -> None:
    gateway = Gateway(bank=FakeBank(lookup=lookup))
    abandon = await accepted(gateway)

    result = await gateway.mediator.send(abandon)

    assert isinstance(result, Ok)
    payment = gateway.store.payments[abandon.payment_id]
    assert payment.status is status
    assert (payment.decline_code or payment.failure_code) == code
    assert gateway.store.jobs[abandon.job_id].status is job_status
    assert abandon.payment_id not in gateway.store.cards, "the bank has answered"
    assert gateway.bank.lookups == [abandon.payment_id]
    assert gateway.bank.calls == [], "never a second authorization"


async def test_a_bank_that_cannot_be_reached_keeps_the_dead_letter_for_later() -> None:
    gateway = Gateway(bank=FakeBank(lookup=Unavailable("timed out")))
    abandon = await accepted(gateway)
    commits = gateway.store.commits

    with pytest.raises(BankUnreachable):
        await gateway.mediator.send(abandon)

    assert gateway.store.payments[abandon.payment_id].status is PaymentStatus.PENDING
    assert gateway.store.jobs[abandon.job_id].status is JobStatus.CREATED
    assert abandon.payment_id in gateway.store.cards
    assert gateway.store.commits == commits


async def test_a_pending_answer_starts_the_wait_for_the_banks_callback() -> None:
    gateway = Gateway(bank=FakeBank(lookup=Pending()))
    abandon = await accepted(gateway)

    await gateway.mediator.send(abandon)

    assert gateway.store.payments[abandon.payment_id].status is PaymentStatus.PENDING
    assert abandon.payment_id in gateway.store.pending_payments
    assert abandon.payment_id not in gateway.store.cards


async def test_a_final_payment_is_left_alone_without_asking_the_bank() -> None:
    gateway = Gateway(bank=FakeBank(Authorized("A1"), lookup=Unknown()))
    abandon = await accepted(gateway)
    await gateway.mediator.send(
        MakePayment(abandon.payment_id, abandon.job_id, abandon.merchant_id)
    )

    result = await gateway.mediator.send(abandon)

    assert isinstance(result, Ok)
    assert result.value.status is PaymentStatus.AUTHORIZED
    assert gateway.bank.lookups == []


async def test_another_merchants_payment_is_not_found() -> None:
    gateway = Gateway(bank=FakeBank(lookup=Authorized("A1")))
    abandon = await accepted(gateway)

    result = await gateway.mediator.send(
        AbandonPayment(abandon.payment_id, abandon.job_id, "mer_2", "delivery_limit")
    )

    assert result == Err(NotFound("payment"))
    assert gateway.bank.lookups == []
