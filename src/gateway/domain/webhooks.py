"""Merchant webhooks: event types, endpoints, their secrets, events and deliveries.

An event is what the merchant's audit trail shows (`GET /events`); a delivery is one
event on its way to one endpoint, attempted until a 2xx answer or the schedule's end.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.domain.events import Event, PaymentAuthorized, PaymentDeclined, PaymentFailed

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
ROTATION_OVERLAP = timedelta(hours=24)


class EventType(StrEnum):
    PAYMENT_AUTHORIZED = "payment.authorized"
    PAYMENT_DECLINED = "payment.declined"
    PAYMENT_FAILED = "payment.failed"

    @classmethod
    def of(cls, event: Event) -> EventType:
        match event:
            case PaymentAuthorized():
                return cls.PAYMENT_AUTHORIZED
            case PaymentDeclined():
                return cls.PAYMENT_DECLINED
            case PaymentFailed():
                return cls.PAYMENT_FAILED


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    merchant_id: str
    url: str
    events: tuple[EventType, ...]
    created_at: datetime
    deleted_at: datetime | None = None

    def subscribes(self, event_type: EventType) -> bool:
        return self.deleted_at is None and event_type in self.events


@dataclass(frozen=True, slots=True)
class PlainSecret:
    """A signing secret as the merchant holds it: never in `repr`, stored only sealed."""

    value: str = field(repr=False)

    @classmethod
    def generate(cls) -> PlainSecret:
        return cls(SECRET_PREFIX + secrets.token_urlsafe(32))

    def __str__(self) -> str:
        return f"{SECRET_PREFIX}…"


@dataclass(frozen=True, slots=True)
class MerchantEvent:
    """`data` is the payment's public representation at the moment of the event."""

    id: str
    merchant_id: str
    type: EventType
    payment_id: str
    created_at: datetime
    data: Mapping[str, object]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(slots=True)
class Delivery:
    """One event to one endpoint. `next_attempt_at` is when the next attempt is due; `None`
    while it waits behind an earlier delivery for the same payment and endpoint."""

    id: str
    event_id: str
    endpoint_id: str
    merchant_id: str
    payment_id: str
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def is_pending(self) -> bool:
        return self.status is DeliveryStatus.PENDING

    def claim(self, now: datetime, lease: timedelta) -> int:
        """Starts the next attempt; if it never reports back, it is due again after `lease`."""
        self.attempts += 1
        self.next_attempt_at = now + lease
        return self.attempts

    def hold(self) -> None:
        self.next_attempt_at = None

    def release(self, now: datetime) -> None:
        self.next_attempt_at = now

    def succeed(self, now: datetime) -> None:
        self.status, self.delivered_at, self.next_attempt_at = DeliveryStatus.DELIVERED, now, None

    def retry_at(self, moment: datetime) -> None:
        self.next_attempt_at = moment

    def fail(self) -> None:
        self.status, self.next_attempt_at = DeliveryStatus.FAILED, None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One POST to the endpoint, as the delivery log shows it."""

    id: str
    delivery_id: str
    event_id: str
    endpoint_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
    next_attempt_at: datetime | None


class DeliveryOutcome(StrEnum):
    """What one `DeliverWebhook` did."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    HELD = "held"
    """An earlier delivery for the same payment and endpoint is still pending."""
    SKIPPED = "skipped"
    """Nothing to do: unknown, already finished, or another attempt than the one due."""
