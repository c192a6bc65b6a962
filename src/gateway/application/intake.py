"""Accepting a payment through the unit of work: read the idempotency key, then write."""

from __future__ import annotations

from gateway.application.ports import IdempotencyRecord, NewPayment, UnitOfWork


class TransactionalIntake:
    """One transaction: the idempotency lookup, then the five rows at commit. A request
    that took the same key meanwhile makes the commit raise `CommitConflict`."""

    async def accept(self, new: NewPayment, uow: UnitOfWork) -> IdempotencyRecord | None:
        record = new.idempotency
        async with uow:
            previous = await uow.idempotency.get(record.merchant_id, record.key)
            if previous is not None:
                return previous
            uow.payments.add(new.payment)
            uow.jobs.add(new.job)
            uow.cards.add(new.payment.id, new.sealed_card)
            uow.outbox.add(new.command)
            uow.idempotency.add(record)
            await uow.commit()
        return None
