"""Aggregates: Payment and Job guard their state machines and record events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gateway.domain.card import CardSummary
from gateway.domain.errors import InvalidTransition
from gateway.domain.events import Event, PaymentAuthorized, PaymentDeclined, PaymentFailed
from gateway.domain.money import Money
from gateway.domain.result import Err, Ok, Result
from gateway.domain.value_objects import Metadata, Reference


class PaymentStatus(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    FAILED = "failed"


class JobStatus(StrEnum):
    CREATED = "created"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(slots=True)
class Payment:
    id: str
    merchant_id: str
    money: Money
    card: CardSummary
    reference: Reference | None
    metadata: Metadata
    created_at: datetime
    updated_at: datetime
    status: PaymentStatus = PaymentStatus.PENDING
    decline_code: str | None = None
    authorization_code: str | None = None
    failure_code: str | None = None
    events: list[Event] = field(default_factory=list, compare=False, repr=False)

    @property
    def is_final(self) -> bool:
        return self.status is not PaymentStatus.PENDING

    def authorize(self, authorization_code: str, now: datetime) -> Result[None, InvalidTransition]:
        return self._settle(PaymentStatus.AUTHORIZED, now, authorization_code=authorization_code)

    def decline(self, decline_code: str, now: datetime) -> Result[None, InvalidTransition]:
        return self._settle(PaymentStatus.DECLINED, now, decline_code=decline_code)

    def fail(self, failure_code: str, now: datetime) -> Result[None, InvalidTransition]:
        return self._settle(PaymentStatus.FAILED, now, failure_code=failure_code)

    def _settle(
        self,
        status: PaymentStatus,
        now: datetime,
        *,
        authorization_code: str | None = None,
        decline_code: str | None = None,
        failure_code: str | None = None,
    ) -> Result[None, InvalidTransition]:
        if self.is_final:
            return Err(InvalidTransition("payment", self.status, status))
        self.status, self.updated_at = status, now
        self.authorization_code = authorization_code
        self.decline_code = decline_code
        self.failure_code = failure_code
        self.events.append(self._event(now))
        return Ok(None)

    def _event(self, now: datetime) -> Event:
        if self.status is PaymentStatus.AUTHORIZED:
            return PaymentAuthorized(self.id, self.merchant_id, now)
        if self.status is PaymentStatus.DECLINED:
            return PaymentDeclined(self.id, self.merchant_id, self.decline_code or "", now)
        return PaymentFailed(self.id, self.merchant_id, self.failure_code or "", now)


@dataclass(frozen=True, slots=True)
class JobError:
    code: str
    message: str


@dataclass(slots=True)
class Job:
    """The merchant's handle on the asynchronous processing of one payment."""

    id: str
    merchant_id: str
    payment_id: str
    created_at: datetime
    status: JobStatus = JobStatus.CREATED
    error: JobError | None = None
    completed_at: datetime | None = None

    def complete(self, now: datetime) -> Result[None, InvalidTransition]:
        if self.status is not JobStatus.CREATED:
            return Err(InvalidTransition("job", self.status, JobStatus.COMPLETED))
        self.status, self.completed_at = JobStatus.COMPLETED, now
        return Ok(None)

    def fail(self, error: JobError, now: datetime) -> Result[None, InvalidTransition]:
        if self.status is not JobStatus.CREATED:
            return Err(InvalidTransition("job", self.status, JobStatus.FAILED))
        self.status, self.error, self.completed_at = JobStatus.FAILED, error, now
        return Ok(None)
