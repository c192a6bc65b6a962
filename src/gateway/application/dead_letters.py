"""Dead letters: a `MakePayment` the worker could not process is settled from what the
bank knows, or given up.

The broker dead-letters a message after too many failed deliveries (or when it is
unreadable). The worker may have reached the bank before it failed — killed after the
bank charged and before the commit, again and again — so the payment is not simply
failed: the bank's status lookup decides. What the bank authorized, declined or holds
pending is recorded as it says; a key the bank never saw fails the payment with
`processing_failed` (nothing was charged); a bank that cannot be reached raises
`BankUnreachable`, and the dead letter is tried again later. Never a `failed` payment
the bank may have charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.application.bank import Rejected, Unavailable, Unknown
from gateway.application.ports import Bank, Clock, UnitOfWork
from gateway.application.settlement import record_outcome
from gateway.domain.commands import AbandonPayment
from gateway.domain.errors import NotFound
from gateway.domain.model import Job, JobError, JobStatus, Payment
from gateway.domain.result import Err, Ok, Result

PROCESSING_FAILED = "processing_failed"
_MESSAGE = "the payment could not be processed"


class BankUnreachable(Exception):
    """The bank could not tell whether it charged: the dead letter is kept and retried."""


@dataclass(frozen=True, slots=True)
class AbandonPaymentDeps:
    clock: Clock
    bank: Bank
    pending_timeout_s: float = 30.0


async def abandon_payment(
    cmd: AbandonPayment, uow: UnitOfWork, *, deps: AbandonPaymentDeps
) -> Result[Payment, NotFound]:
    """Settles a still-pending payment and its job from the bank's status lookup; a final
    payment is left as it is.

    A pending payment whose card data is gone has been answered by the bank (it said
    `pending`): its callback or status lookup settles it, so it is not touched here.
    """
    async with uow:
        match await _load(cmd, uow, for_update=False):
            case Err() as missing:
                return missing
            case Ok((payment, _)):
                pass
        answered = await uow.cards.get(cmd.payment_id) is None
    if payment.is_final or answered:
        return Ok(payment)
    outcome = await deps.bank.lookup(cmd.payment_id)
    if isinstance(outcome, Unavailable):
        raise BankUnreachable(outcome.message)
    async with uow:
        match await _load(cmd, uow, for_update=True):
            case Err() as missing:
                return missing
            case Ok((payment, job)):
                pass
        if payment.is_final or await uow.cards.get(cmd.payment_id) is None:
            return Ok(payment)
        now = deps.clock.now()
        if isinstance(outcome, Unknown | Rejected):  # the bank never took it: nothing charged
            _give_up(payment, job, now)
            await uow.payments.save(payment)
            await uow.jobs.save(job)
            await uow.cards.delete(cmd.payment_id)
        else:
            await record_outcome(
                uow, payment, job, outcome, now, pending_timeout_s=deps.pending_timeout_s
            )
        await uow.commit()
        return Ok(payment)


async def _load(
    cmd: AbandonPayment, uow: UnitOfWork, *, for_update: bool
) -> Result[tuple[Payment, Job], NotFound]:
    payment = await uow.payments.get(cmd.payment_id, for_update=for_update)
    job = await uow.jobs.get(cmd.job_id)
    if payment is None or job is None or payment.merchant_id != cmd.merchant_id:
        return Err(NotFound("payment"))
    return Ok((payment, job))


def _give_up(payment: Payment, job: Job, now: datetime) -> None:
    payment.fail(PROCESSING_FAILED, now)
    if job.status is JobStatus.CREATED:
        job.fail(JobError(PROCESSING_FAILED, _MESSAGE), now)
