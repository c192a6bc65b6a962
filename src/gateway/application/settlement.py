"""Recording what the bank answered, in one place for `make_payment`, the bank's
callbacks and the pending-payment sweep.

Both functions run inside the caller's transaction, with the payment read `for_update`
and not yet final; the caller commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import assert_never

from gateway.application.bank import (
    Authorized,
    BankOutcome,
    Declined,
    Pending,
    Rejected,
    Unavailable,
    Unknown,
)
from gateway.application.ports import PendingPayment, UnitOfWork
from gateway.domain.model import Job, JobError, Payment

FinalOutcome = Authorized | Declined | Rejected | Unavailable | Unknown
UNKNOWN_MESSAGE = "the bank has no record of this payment and its card data is gone"


async def record_outcome(
    uow: UnitOfWork,
    payment: Payment,
    job: Job,
    outcome: BankOutcome,
    now: datetime,
    *,
    pending_timeout_s: float,
) -> None:
    """`Pending` starts the wait for the callback (unless it already runs): the payment
    stays `pending`, the job `created`, and a status lookup is due after the timeout.
    Any other outcome settles the payment and its job. The card data goes either way:
    the bank has answered."""
    if not isinstance(outcome, Pending):
        await settle(uow, payment, job, outcome, now)
        return
    await uow.cards.delete(payment.id)
    if await uow.pending_payments.get(payment.id) is None:
        due = now + timedelta(seconds=pending_timeout_s)
        uow.pending_payments.add(PendingPayment(payment.id, job.id, payment.merchant_id, now, due))


async def settle(
    uow: UnitOfWork, payment: Payment, job: Job, outcome: FinalOutcome, now: datetime
) -> None:
    """Makes the payment final and completes (or fails) its job; nothing waits any more."""
    apply_outcome(payment, job, outcome, now)
    await store_settled(uow, payment, job)


async def store_settled(uow: UnitOfWork, payment: Payment, job: Job) -> None:
    """Writes a settled payment (with its events) and job; the card data and any pending
    row go."""
    await uow.payments.save(payment)
    await uow.jobs.save(job)
    await uow.cards.delete(payment.id)
    await uow.pending_payments.delete(payment.id)


def apply_outcome(payment: Payment, job: Job, outcome: FinalOutcome, now: datetime) -> None:
    """The domain side of `settle`: the payment becomes final, its job completes or fails."""
    match outcome:
        case Authorized(code):
            payment.authorize(code, now)
            job.complete(now)
        case Declined(code):
            payment.decline(code, now)
            job.complete(now)
        case Rejected(message):
            _fail(payment, job, JobError("bank_rejected", message), now)
        case Unavailable(message):
            _fail(payment, job, JobError("bank_unavailable", message), now)
        case Unknown():
            _fail(payment, job, JobError("bank_unavailable", UNKNOWN_MESSAGE), now)
        case _:
            assert_never(outcome)


def _fail(payment: Payment, job: Job, error: JobError, now: datetime) -> None:
    payment.fail(error.code, now)
    job.fail(error, now)
