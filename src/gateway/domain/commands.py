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
    PaymentAlreadyFinal,
    SignatureRejected,
    ValidationFailed,
)
from gateway.domain.merchant import PlainApiKey
from gateway.domain.model import Job, Payment
from gateway.domain.result import Result
from gateway.domain.webhook_url import UrlInvalid, UrlNotAllowed
from gateway.domain.webhooks import (
    Delivery,
    DeliveryOutcome,
    PlainSecret,
    WebhookEndpoint,
)

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
    """Settle a payment whose `MakePayment` could not be processed (dead-lettered) from
    the bank's status lookup: as the bank decided, or `failed` with `processing_failed`
    when the bank never saw it. Ids only."""

    payment_id: str
    job_id: str
    merchant_id: str
    reason: str


BankCallbackError = SignatureRejected | ValidationFailed | NotFound | PaymentAlreadyFinal


@dataclass(frozen=True, slots=True)
class BankCallbackAccepted:
    """A valid callback: `applied` settled the payment, `duplicate` found it already
    settled that way, `replayed` is an event id seen before (nothing done again)."""

    event_id: str
    payment_id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class ReceiveBankCallback(Command[Result[BankCallbackAccepted, BankCallbackError]]):
    """The bank's signed `POST /webhooks/bank`, as received: raw body and signature header."""

    raw_body: bytes = field(repr=False)
    signature_header: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep did: rows claimed, and how many of them ended final."""

    claimed: int
    settled: int


@dataclass(frozen=True, slots=True)
class SweepPendingPayments(Command[SweepReport]):
    """Ask the bank's status lookup about up to `limit` pending payments that are due."""

    limit: int = 100


# Merchant webhooks (see `gateway.domain.webhooks`).

CreateWebhookEndpointError = ValidationFailed | UrlInvalid | UrlNotAllowed


@dataclass(frozen=True, slots=True)
class IssuedEndpoint:
    """An endpoint with a fresh signing secret: the only moment the secret is shown."""

    endpoint: WebhookEndpoint
    secret: PlainSecret


@dataclass(frozen=True, slots=True)
class CreateWebhookEndpoint(Command[Result[IssuedEndpoint, CreateWebhookEndpointError]]):
    """`body` is the request JSON as received: `{"url": …, "events": […]}`."""

    merchant_id: str
    body: object


@dataclass(frozen=True, slots=True)
class DeleteWebhookEndpoint(Command[Result[None, NotFound]]):
    merchant_id: str
    endpoint_id: str


@dataclass(frozen=True, slots=True)
class RotateWebhookSecret(Command[Result[IssuedEndpoint, NotFound]]):
    """A new secret; the previous ones keep signing for `ROTATION_OVERLAP`."""

    merchant_id: str
    endpoint_id: str


@dataclass(frozen=True, slots=True)
class Redelivery:
    event_id: str
    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True, slots=True)
class RedeliverEvent(Command[Result[Redelivery, NotFound]]):
    """Send an event again, now, to every endpoint subscribed to its type."""

    merchant_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class DeliverWebhook(Command[DeliveryOutcome]):
    """Make attempt number `attempt` of a delivery. Crosses the broker: ids only."""

    delivery_id: str
    attempt: int = 1
