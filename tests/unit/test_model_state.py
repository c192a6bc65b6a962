"""Stateful tests: the Payment and Job state machines under any sequence of calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gateway.domain.card import CardScheme, CardSummary
from gateway.domain.errors import InvalidTransition
from gateway.domain.events import PaymentAuthorized, PaymentDeclined, PaymentFailed
from gateway.domain.model import Job, JobError, JobStatus, Payment, PaymentStatus
from gateway.domain.money import Amount, Currency, Money
from gateway.domain.result import Err, Ok
from gateway.domain.value_objects import Metadata

START = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
codes = st.text("ABCDEFGHIJ0123456789_", min_size=1, max_size=8)
steps = st.integers(min_value=0, max_value=3600)


def new_payment() -> Payment:
    card = CardSummary(CardScheme.VISA, "424242", "4242", 12, 2030, None)
    money = Money(Amount(1050), Currency("GBP", 2))
    return Payment("pay_1", "mer_1", money, card, None, Metadata.empty(), START, START)


class PaymentMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.payment = new_payment()
        self.now = START
        self.settled: tuple[PaymentStatus, str, datetime] | None = None

    def _settle(self, status: PaymentStatus, code: str, result: object) -> None:
        if self.settled is None:
            assert result == Ok(None)
            self.settled = (status, code, self.now)
        else:
            assert result == Err(InvalidTransition("payment", self.settled[0], status))

    @rule(code=codes, later=steps)
    def authorize(self, code: str, later: int) -> None:
        self.now += timedelta(seconds=later)
        self._settle(PaymentStatus.AUTHORIZED, code, self.payment.authorize(code, self.now))

    @rule(code=codes, later=steps)
    def decline(self, code: str, later: int) -> None:
        self.now += timedelta(seconds=later)
        self._settle(PaymentStatus.DECLINED, code, self.payment.decline(code, self.now))

    @rule(code=codes, later=steps)
    def fail(self, code: str, later: int) -> None:
        self.now += timedelta(seconds=later)
        self._settle(PaymentStatus.FAILED, code, self.payment.fail(code, self.now))

    @invariant()
    def the_first_settle_wins_and_stays(self) -> None:
        payment = self.payment
        assert payment.created_at == START
        if self.settled is None:
            assert payment.status is PaymentStatus.PENDING
            assert not payment.is_final
            assert payment.updated_at == START
            assert payment.events == []
            assert (payment.authorization_code, payment.decline_code) == (None, None)
            return
        status, code, at = self.settled
        assert payment.status is status
        assert payment.is_final
        assert payment.updated_at == at
        codes = (payment.authorization_code, payment.decline_code, payment.failure_code)
        assert (
            codes
            == {
                PaymentStatus.AUTHORIZED: (code, None, None),
                PaymentStatus.DECLINED: (None, code, None),
                PaymentStatus.FAILED: (None, None, code),
            }[status]
        )

    @invariant()
    def exactly_one_event_per_settle(self) -> None:
        if self.settled is None:
            return
        status, code, at = self.settled
        expected = {
            PaymentStatus.AUTHORIZED: PaymentAuthorized("pay_1", "mer_1", at),
            PaymentStatus.DECLINED: PaymentDeclined("pay_1", "mer_1", code, at),
            PaymentStatus.FAILED: PaymentFailed("pay_1", "mer_1", code, at),
        }[status]
        assert self.payment.events == [expected]


class JobMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.job = Job("job_1", "mer_1", "pay_1", START)
        self.now = START
        self.ended: tuple[JobStatus, JobError | None, datetime] | None = None

    def _end(self, status: JobStatus, error: JobError | None, result: object) -> None:
        if self.ended is None:
            assert result == Ok(None)
            self.ended = (status, error, self.now)
        else:
            assert result == Err(InvalidTransition("job", self.ended[0], status))

    @rule(later=steps)
    def complete(self, later: int) -> None:
        self.now += timedelta(seconds=later)
        self._end(JobStatus.COMPLETED, None, self.job.complete(self.now))

    @rule(code=codes, message=st.text(max_size=10), later=steps)
    def fail(self, code: str, message: str, later: int) -> None:
        self.now += timedelta(seconds=later)
        error = JobError(code, message)
        self._end(JobStatus.FAILED, error, self.job.fail(error, self.now))

    @invariant()
    def the_first_end_wins_and_stays(self) -> None:
        job = self.job
        assert (job.id, job.payment_id, job.created_at) == ("job_1", "pay_1", START)
        if self.ended is None:
            assert (job.status, job.error, job.completed_at) == (JobStatus.CREATED, None, None)
        else:
            assert (job.status, job.error, job.completed_at) == self.ended


machine_settings = settings(max_examples=60, stateful_step_count=12, deadline=None)
TestPaymentStateMachine = PaymentMachine.TestCase
TestPaymentStateMachine.settings = machine_settings
TestJobStateMachine = JobMachine.TestCase
TestJobStateMachine.settings = machine_settings
