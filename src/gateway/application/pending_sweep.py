"""The pending-payment sweep: when the bank's callback does not come in time, ask its
status lookup, and settle from the answer.

A sweep claims the due rows in one short transaction, moving them a lease ahead so that
no other process takes them meanwhile; it asks the bank outside any transaction; then each
payment is settled in a transaction of its own that first checks the row is still there
(a callback may have settled the payment in between). No answer (`404`, still pending,
bank unreachable) asks again after another timeout; after 24 h the payment fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from gateway.application.bank import Authorized, BankOutcome, Declined, Unavailable
from gateway.application.ports import Bank, Clock, PendingPayment, UnitOfWork
from gateway.application.settlement import settle
from gateway.domain.commands import SweepPendingPayments, SweepReport
from gateway.domain.model import Job, Payment

GIVE_UP_AFTER = timedelta(hours=24)
GAVE_UP = "the bank gave no final answer within 24 hours"


@dataclass(frozen=True, slots=True)
class SweepDeps:
    clock: Clock
    bank: Bank
    pending_timeout_s: float = 30.0
    lease_s: float = 60.0
    """How long a claimed row stays out of other sweeps: longer than a lookup can take."""


async def sweep_pending_payments(
    cmd: SweepPendingPayments, uow: UnitOfWork, *, deps: SweepDeps
) -> SweepReport:
    now = deps.clock.now()
    lease_until = now + timedelta(seconds=max(deps.lease_s, deps.pending_timeout_s))
    async with uow:
        claimed = await uow.pending_payments.claim_due(now, cmd.limit, lease_until)
        await uow.commit()
    answers = await asyncio.gather(*(_lookup(deps.bank, row.payment_id) for row in claimed))
    settled = 0
    for row, answer in zip(claimed, answers, strict=True):
        settled += await _settle_from_lookup(uow, row.payment_id, answer, deps)
    return SweepReport(claimed=len(claimed), settled=settled)


async def _lookup(bank: Bank, payment_id: str) -> BankOutcome:
    try:
        return await bank.lookup(payment_id)
    except Exception as error:  # one failing lookup must not hold back the others
        return Unavailable(f"the status lookup failed ({type(error).__name__})")


async def _settle_from_lookup(
    uow: UnitOfWork, payment_id: str, answer: BankOutcome, deps: SweepDeps
) -> bool:
    """True when this answer made the payment final."""
    async with uow:
        payment = await uow.payments.get(payment_id, for_update=True)
        pending = await uow.pending_payments.get(payment_id)
        if payment is None or pending is None:
            return False  # its callback settled it meanwhile
        job = await uow.jobs.get(pending.job_id)
        if payment.is_final or job is None:
            await uow.pending_payments.delete(payment_id)  # nothing is waiting any more
            final = False
        else:
            final = await _answer(uow, payment, job, pending, answer, deps)
        await uow.commit()
        return final


async def _answer(
    uow: UnitOfWork,
    payment: Payment,
    job: Job,
    pending: PendingPayment,
    answer: BankOutcome,
    deps: SweepDeps,
) -> bool:
    now = deps.clock.now()
    if isinstance(answer, Authorized | Declined):
        await settle(uow, payment, job, answer, now)
    elif now - pending.pending_since > GIVE_UP_AFTER:
        await settle(uow, payment, job, Unavailable(GAVE_UP), now)
    else:  # 404, still pending, or no answer at all: ask again after another timeout
        due = now + timedelta(seconds=deps.pending_timeout_s)
        await uow.pending_payments.reschedule(payment.id, due, pending.lookups + 1)
        return False
    return True


Sweep = Callable[[SweepPendingPayments], Awaitable[SweepReport]]


async def run_sweeper(
    sweep: Sweep,
    stop: asyncio.Event,
    *,
    interval_s: float,
    limit: int = 100,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Sweeps every `interval_s` until `stop` is set; at once again after a full batch."""
    while not stop.is_set():
        claimed = 0
        try:
            claimed = (await sweep(SweepPendingPayments(limit))).claimed
        except Exception as error:  # the database is down, say: try again next time
            if on_error is not None:
                on_error(error)
        if claimed < limit:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
