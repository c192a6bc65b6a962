"""The bank's signed callback: verify → parse → settle the pending payment, exactly once.

Nothing is read or stored before the signature checks out. Every signature-valid
callback about a known payment is recorded (`applied`, `duplicate` or `conflict`) in the
transaction that acts on it; its event id is the primary key, so two deliveries of one
event at once cannot both apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.application.bank import Authorized
from gateway.application.bank_events import BankEvent, parse_bank_event
from gateway.application.ports import BankCallbackRecord, Clock, CommitConflict, UnitOfWork
from gateway.application.settlement import settle
from gateway.domain import signature
from gateway.domain.commands import BankCallbackAccepted, BankCallbackError, ReceiveBankCallback
from gateway.domain.errors import NotFound, PaymentAlreadyFinal, SignatureRejected
from gateway.domain.model import Payment, PaymentStatus
from gateway.domain.result import Err, Ok, Result

APPLIED, DUPLICATE, CONFLICT, REPLAYED = "applied", "duplicate", "conflict", "replayed"


@dataclass(frozen=True, slots=True)
class BankCallbackDeps:
    clock: Clock
    secrets: tuple[str, ...]
    tolerance_s: int = signature.DEFAULT_TOLERANCE_S


async def receive_bank_callback(
    cmd: ReceiveBankCallback, uow: UnitOfWork, *, deps: BankCallbackDeps
) -> Result[BankCallbackAccepted, BankCallbackError]:
    match _verify(cmd, deps):
        case Err(rejected):
            return Err(rejected)
        case Ok(signed_at):
            pass
    match parse_bank_event(cmd.raw_body):
        case Err(invalid):
            return Err(invalid)
        case Ok(event):
            pass
    try:
        return await _apply(event, signed_at, uow, deps.clock)
    except CommitConflict:  # the same event, delivered at the same time, was recorded first
        return Ok(_accepted(event, REPLAYED))


def _verify(
    cmd: ReceiveBankCallback, deps: BankCallbackDeps
) -> Result[datetime, SignatureRejected]:
    if not deps.secrets:
        return Err(SignatureRejected("no bank webhook secret is configured"))
    if cmd.signature_header is None:
        return Err(SignatureRejected("the Bank-Signature header is missing"))
    now = int(deps.clock.now().timestamp())
    match signature.verify(
        cmd.raw_body, cmd.signature_header, deps.secrets, now=now, tolerance=deps.tolerance_s
    ):
        case Err(invalid):
            return Err(SignatureRejected(invalid.reason))
        case Ok(timestamp):
            return Ok(datetime.fromtimestamp(timestamp, UTC))


async def _apply(
    event: BankEvent, signed_at: datetime, uow: UnitOfWork, clock: Clock
) -> Result[BankCallbackAccepted, BankCallbackError]:
    async with uow:
        if await uow.bank_callbacks.get(event.id) is not None:
            return Ok(_accepted(event, REPLAYED))
        payment = await uow.payments.get(event.payment_id, for_update=True)
        job = await uow.jobs.for_payment(event.payment_id)
        if payment is None or job is None:
            return Err(NotFound("payment"))
        now = clock.now()
        outcome = _compare(payment, event)
        if outcome == APPLIED:
            await settle(uow, payment, job, event.outcome, now)
        uow.bank_callbacks.add(
            BankCallbackRecord(event.id, payment.id, event.type, outcome, now, signed_at)
        )
        await uow.commit()
    if outcome == CONFLICT:
        return Err(PaymentAlreadyFinal(payment.status.value))
    return Ok(_accepted(event, outcome))


def _compare(payment: Payment, event: BankEvent) -> str:
    """What the event does to the payment: settle it, repeat its outcome, or contradict it."""
    if not payment.is_final:
        return APPLIED
    authorized = isinstance(event.outcome, Authorized)
    reported = PaymentStatus.AUTHORIZED if authorized else PaymentStatus.DECLINED
    return DUPLICATE if payment.status is reported else CONFLICT


def _accepted(event: BankEvent, outcome: str) -> BankCallbackAccepted:
    return BankCallbackAccepted(event.id, event.payment_id, outcome)
