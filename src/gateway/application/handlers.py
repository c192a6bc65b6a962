"""Command handlers: parse → load → ask the domain → write → commit.

Shape: `(cmd, uow, *, deps) -> Result`. `bootstrap` binds the deps; the mediator gives
each message a fresh unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.application.bank import BankOutcome, BankRequest, Pending, Rejected
from gateway.application.intake import TransactionalIntake
from gateway.application.ports import (
    Bank,
    CardVault,
    Clock,
    CommitConflict,
    Fingerprinter,
    IdempotencyRecord,
    IdGenerator,
    KeyLocks,
    NewPayment,
    PaymentIntake,
    PaymentProcessing,
    UnitOfWork,
)
from gateway.application.processing import TransactionalProcessing
from gateway.application.settlement import apply_outcome, record_outcome
from gateway.domain.card import Card
from gateway.domain.commands import (
    MakePayment,
    PaymentAccepted,
    RequestPayment,
    RequestPaymentError,
)
from gateway.domain.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, NotFound
from gateway.domain.model import Job, Payment
from gateway.domain.payment_request import PaymentRequest, parse_payment_request
from gateway.domain.result import Err, Ok, Result
from gateway.domain.value_objects import IdempotencyKey


@dataclass(frozen=True, slots=True)
class RequestPaymentDeps:
    clock: Clock
    ids: IdGenerator
    vault: CardVault
    fingerprints: Fingerprinter
    locks: KeyLocks
    intake: PaymentIntake = field(default_factory=TransactionalIntake)


async def request_payment(
    cmd: RequestPayment, uow: UnitOfWork, *, deps: RequestPaymentDeps
) -> Result[PaymentAccepted, RequestPaymentError]:
    match IdempotencyKey.create(cmd.idempotency_key):
        case Err(key_error):
            return Err(key_error)
        case Ok(key):
            pass
    match parse_payment_request(cmd.body, deps.clock.now()):
        case Err(invalid):
            return Err(invalid)
        case Ok(request):
            pass
    fingerprint = deps.fingerprints.fingerprint(cmd.body)
    async with deps.locks.hold(f"{cmd.merchant_id}:{key.value}") as held:
        if not held:
            return Err(IdempotencyKeyInProgress())
        new = _new_payment(cmd.merchant_id, key, fingerprint, request, deps)
        try:
            previous = await deps.intake.accept(new, uow)
        except CommitConflict:
            return Err(IdempotencyKeyInProgress())
        if previous is not None:
            return _replay(previous, fingerprint)
        return Ok(PaymentAccepted(new.job, replayed=False))


def _replay(
    previous: IdempotencyRecord, fingerprint: str
) -> Result[PaymentAccepted, RequestPaymentError]:
    if previous.fingerprint != fingerprint:
        return Err(IdempotencyKeyReused())
    job = Job(previous.job_id, previous.merchant_id, previous.payment_id, previous.created_at)
    return Ok(PaymentAccepted(job, replayed=True))


def _new_payment(
    merchant_id: str,
    key: IdempotencyKey,
    fingerprint: str,
    request: PaymentRequest,
    deps: RequestPaymentDeps,
) -> NewPayment:
    now = deps.clock.now()
    payment = Payment(
        id=deps.ids.new("pay"),
        merchant_id=merchant_id,
        money=request.money,
        card=request.card.summary(),
        reference=request.reference,
        metadata=request.metadata,
        created_at=now,
        updated_at=now,
    )
    job = Job(deps.ids.new("job"), merchant_id, payment.id, now)
    return NewPayment(
        payment=payment,
        job=job,
        sealed_card=deps.vault.seal(payment.id, request.card),
        command=MakePayment(payment.id, job.id, merchant_id),
        idempotency=IdempotencyRecord(merchant_id, key.value, fingerprint, job.id, payment.id, now),
    )


@dataclass(frozen=True, slots=True)
class MakePaymentDeps:
    clock: Clock
    vault: CardVault
    bank: Bank
    pending_timeout_s: float = 30.0
    processing: PaymentProcessing = field(default_factory=TransactionalProcessing)


async def make_payment(
    cmd: MakePayment, uow: UnitOfWork, *, deps: MakePaymentDeps
) -> Result[Payment, NotFound]:
    """Safe to run twice: a final payment, or one waiting for the bank's callback (the
    bank answered `202`), is returned as it is, without calling the bank."""
    work = await deps.processing.load(cmd.payment_id, cmd.job_id, uow)
    if work is None:
        return Err(NotFound("payment"))
    payment, job = work.payment, work.job
    if payment.is_final or work.waiting:
        return Ok(payment)
    outcome = await _ask_bank(payment, work.sealed_card, deps)
    if job is not None and not isinstance(outcome, Pending):
        # The common case, in one step where the database can: nothing else settled it.
        apply_outcome(payment, job, outcome, deps.clock.now())
        if await deps.processing.settle(work, payment, job, uow):
            return Ok(payment)
    return await _record(cmd, uow, outcome, deps)


async def _ask_bank(payment: Payment, sealed: bytes | None, deps: MakePaymentDeps) -> BankOutcome:
    if sealed is None:
        # The card data is gone, so the bank must have seen this payment: ask it.
        return await deps.bank.lookup(payment.id)
    match deps.vault.open(payment.id, sealed):
        case Ok(card):
            return await deps.bank.authorize(_bank_request(payment, card))
        case Err():
            return Rejected("the stored card data could not be read")


def _bank_request(payment: Payment, card: Card) -> BankRequest:
    return BankRequest(
        idempotency_key=payment.id,
        card_number=card.number.digits,
        expiry_month=card.expiry.month,
        expiry_year=card.expiry.year,
        cvv=card.cvv.digits,
        amount=payment.money.minor_units,
        currency=payment.money.currency.code,
    )


async def _record(
    cmd: MakePayment, uow: UnitOfWork, outcome: BankOutcome, deps: MakePaymentDeps
) -> Result[Payment, NotFound]:
    async with uow:
        payment = await uow.payments.get(cmd.payment_id, for_update=True)
        job = await uow.jobs.get(cmd.job_id)
        if payment is None or job is None:
            return Err(NotFound("payment"))
        if payment.is_final:  # another delivery, or the bank's callback, settled it first
            return Ok(payment)
        now = deps.clock.now()
        await record_outcome(
            uow, payment, job, outcome, now, pending_timeout_s=deps.pending_timeout_s
        )
        await uow.commit()
        return Ok(payment)
