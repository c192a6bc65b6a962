"""Commands: imperative, each handled by exactly one handler.

`Command[R]` carries its handler's return type, so `await mediator.send(cmd)` is typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.domain.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    NotFound,
    ValidationFailed,
)
from gateway.domain.merchant import PlainApiKey
from gateway.domain.model import Job, Payment
from gateway.domain.result import Result

R = TypeVar("R", covariant=True)


class Command(Generic[R]):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class PaymentAccepted:
    """The answer to `RequestPayment`: the job, and whether this is a replay."""

    job: Job
    replayed: bool


RequestPaymentError = (
    ValidationFailed | IdempotencyKeyInvalid | IdempotencyKeyReused | IdempotencyKeyInProgress
)


@dataclass(frozen=True, slots=True)
class RequestPayment(Command[Result[PaymentAccepted, RequestPaymentError]]):
    """A merchant asks for a payment. In-process only: the body holds card data."""

    merchant_id: str
    idempotency_key: str
    body: object = field(repr=False)


@dataclass(frozen=True, slots=True)
class MakePayment(Command[Result[Payment, NotFound]]):
    """Take an accepted payment to the bank. Crosses the broker: ids only."""

    payment_id: str
    job_id: str
    merchant_id: str


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created API key: the only moment its secret exists outside the merchant."""

    key_id: str
    merchant_id: str
    api_key: PlainApiKey


@dataclass(frozen=True, slots=True)
class CreateMerchant(Command[IssuedKey]):
    """Create a merchant together with its first API key."""

    name: str


@dataclass(frozen=True, slots=True)
class CreateApiKey(Command[Result[IssuedKey, NotFound]]):
    merchant_id: str


@dataclass(frozen=True, slots=True)
class RevokeApiKey(Command[Result[None, NotFound]]):
    key_id: str


@dataclass(frozen=True, slots=True)
class AbandonPayment(Command[Result[Payment, NotFound]]):
    """Give up on a payment whose `MakePayment` could not be processed (dead-lettered):
    the payment and its job end `failed` with `processing_failed`. Ids only."""

    payment_id: str
    job_id: str
    merchant_id: str
    reason: str
