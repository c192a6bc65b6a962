"""Ports of merchant webhooks: their repositories (part of the unit of work) and the outside
world a delivery needs (DNS, secret sealing, the HTTP sender, delayed retries)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.domain.webhooks import (
    Delivery,
    DeliveryAttempt,
    EventType,
    MerchantEvent,
    WebhookEndpoint,
)


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """A signing secret at rest: sealed, and active until `expires_at` (None: for good)."""

    id: str
    endpoint_id: str
    sealed: bytes
    created_at: datetime
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class WebhookEndpoints(Protocol):
    def add(self, endpoint: WebhookEndpoint) -> None: ...

    async def get(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """The merchant's endpoint unless it was deleted."""
        ...

    async def delete(self, endpoint_id: str, now: datetime) -> None: ...

    async def subscribed(
        self, merchant_id: str, event_type: EventType
    ) -> Sequence[WebhookEndpoint]:
        """The merchant's endpoints (not deleted) subscribed to `event_type`, oldest first."""
        ...

    def add_secret(self, secret: StoredSecret) -> None: ...

    async def secrets(self, endpoint_id: str) -> Sequence[StoredSecret]: ...

    async def expire_secrets(self, endpoint_id: str, at: datetime) -> None:
        """Secrets without an expiry, or expiring after `at`, now expire at `at`."""
        ...


class MerchantEvents(Protocol):
    def add(self, event: MerchantEvent) -> None: ...

    async def get(self, merchant_id: str, event_id: str) -> MerchantEvent | None: ...


class Deliveries(Protocol):
    def add(self, delivery: Delivery) -> None: ...

    async def get(self, delivery_id: str, *, for_update: bool = False) -> Delivery | None: ...

    async def save(self, delivery: Delivery) -> None: ...

    async def earlier_pending(self, delivery: Delivery) -> bool:
        """True while an earlier delivery for the same endpoint and payment is pending."""
        ...

    async def next_pending(self, delivery: Delivery) -> Delivery | None:
        """The earliest pending delivery after this one for the same endpoint and payment."""
        ...

    def add_attempt(self, attempt: DeliveryAttempt) -> None: ...


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """The IP addresses `host` resolves to; empty when it does not resolve."""
        ...


class SecretBox(Protocol):
    """Authenticated encryption of signing secrets, bound to their endpoint."""

    def seal(self, endpoint_id: str, secret: str) -> bytes: ...

    def open(self, endpoint_id: str, sealed: bytes) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SendResult:
    """`status_code` None: no answer (`error` says why: timeout, connection, address…)."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """One POST; never raises; redirects are not followed (they are failures)."""
        ...


class WebhookRetries(Protocol):
    async def schedule(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        """Arrange for attempt number `attempt` to be made after `delay_s`."""
        ...


@dataclass(frozen=True, slots=True)
class DueDelivery:
    delivery_id: str
    attempt: int


class DueDeliveries(Protocol):
    async def due(self, before: datetime, limit: int) -> Sequence[DueDelivery]:
        """Pending deliveries whose next attempt was due at or before `before`."""
        ...
