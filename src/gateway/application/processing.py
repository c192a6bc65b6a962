"""A payment's trip to the bank through the unit of work: for SQLite and the tests."""

from __future__ import annotations

from gateway.application.ports import PaymentWork, UnitOfWork
from gateway.application.settlement import store_settled
from gateway.domain.model import Job, Payment


class TransactionalProcessing:
    """`load` reads in one transaction; `settle` writes in another, the payment locked.
    The events go to the endpoints subscribed when `settle` runs."""

    async def load(self, payment_id: str, job_id: str, uow: UnitOfWork) -> PaymentWork | None:
        async with uow:
            payment = await uow.payments.get(payment_id)
            if payment is None:
                return None
            job = await uow.jobs.get(job_id)
            sealed = await uow.cards.get(payment_id)
            waiting = sealed is None and await uow.pending_payments.get(payment_id) is not None
        return PaymentWork(payment, job, sealed, waiting)

    async def settle(self, work: PaymentWork, payment: Payment, job: Job, uow: UnitOfWork) -> bool:
        async with uow:
            stored = await uow.payments.get(payment.id, for_update=True)
            if stored is None or stored.is_final:
                return False
            await store_settled(uow, payment, job)
            await uow.commit()
        return True
