"""Dead letters: a `MakePayment` the worker could not process gives its payment up.

The broker dead-letters a message after too many failed deliveries (or when it is
unreadable); the merchant then sees the job `failed` with `processing_failed` instead
of a job that stays `created` for ever.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.application.ports import Clock, UnitOfWork
from gateway.domain.commands import AbandonPayment
from gateway.domain.errors import NotFound
from gateway.domain.model import JobError, JobStatus, Payment
from gateway.domain.result import Err, Ok, Result

PROCESSING_FAILED = "processing_failed"
_MESSAGE = "the payment could not be processed"


@dataclass(frozen=True, slots=True)
class AbandonPaymentDeps:
    clock: Clock


async def abandon_payment(
    cmd: AbandonPayment, uow: UnitOfWork, *, deps: AbandonPaymentDeps
) -> Result[Payment, NotFound]:
    """Fails a still-pending payment and its job; a final payment is left as it is.

    A pending payment whose card data is gone has been answered by the bank (it said
    `pending`): its callback or status lookup settles it, so it is not given up here.
    """
    async with uow:
        payment = await uow.payments.get(cmd.payment_id, for_update=True)
        job = await uow.jobs.get(cmd.job_id)
        if payment is None or job is None or payment.merchant_id != cmd.merchant_id:
            return Err(NotFound("payment"))
        if payment.is_final or await uow.cards.get(cmd.payment_id) is None:
            return Ok(payment)
        now = deps.clock.now()
        payment.fail(PROCESSING_FAILED, now)
        await uow.payments.save(payment)
        if job.status is JobStatus.CREATED:
            job.fail(JobError(PROCESSING_FAILED, _MESSAGE), now)
            await uow.jobs.save(job)
        await uow.cards.delete(cmd.payment_id)
        await uow.commit()
        return Ok(payment)
