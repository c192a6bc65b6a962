"""In-memory fakes of the webhook ports: repositories staged per unit of work (applied by
`FakeUnitOfWork.commit`), and the outside world (DNS, the HTTP sender, delayed retries)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.application.webhook_ports import DueDelivery, SendResult, StoredSecret
from gateway.domain.webhooks import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EventType,
    MerchantEvent,
    WebhookEndpoint,
)


class CountingIds:
    def __init__(self, width: int = 26) -> None:
        self.count, self._width = 0, width

    def new(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count:0{self._width}d}"


@dataclass
class WebhookStore:
    """Committed webhook state; `ids` names what it holds, in creation order."""

    ids: CountingIds = field(default_factory=CountingIds)
    endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    secrets: dict[str, StoredSecret] = field(default_factory=dict)
    events: dict[str, MerchantEvent] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    def apply(self, staged: WebhookStore) -> None:
        self.endpoints.update(staged.endpoints)
        self.secrets.update(staged.secrets)
        self.events.update(staged.events)
        self.deliveries.update({k: dataclasses.replace(d) for k, d in staged.deliveries.items()})
        self.attempts.extend(staged.attempts)


class _Tables:
    def __init__(self, store: WebhookStore, staged: WebhookStore) -> None:
        self._store, self._staged = store, staged

    def _endpoints(self) -> dict[str, WebhookEndpoint]:
        return {**self._store.endpoints, **self._staged.endpoints}

    def _deliveries(self) -> list[Delivery]:
        merged = {**self._store.deliveries, **self._staged.deliveries}
        return sorted(merged.values(), key=lambda delivery: delivery.id)


class FakeWebhookEndpoints(_Tables):
    def add(self, endpoint: WebhookEndpoint) -> None:
        self._staged.endpoints[endpoint.id] = endpoint

    async def get(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        found = self._endpoints().get(endpoint_id)
        if found is None or found.merchant_id != merchant_id or found.deleted_at is not None:
            return None
        return found

    async def delete(self, endpoint_id: str, now: datetime) -> None:
        found = self._endpoints()[endpoint_id]
        self._staged.endpoints[endpoint_id] = dataclasses.replace(found, deleted_at=now)

    async def subscribed(
        self, merchant_id: str, event_type: EventType
    ) -> Sequence[WebhookEndpoint]:
        mine = [e for e in self._endpoints().values() if e.merchant_id == merchant_id]
        return sorted((e for e in mine if e.subscribes(event_type)), key=lambda e: e.id)

    def add_secret(self, secret: StoredSecret) -> None:
        self._staged.secrets[secret.id] = secret

    async def secrets(self, endpoint_id: str) -> Sequence[StoredSecret]:
        merged = {**self._store.secrets, **self._staged.secrets}.values()
        return sorted((s for s in merged if s.endpoint_id == endpoint_id), key=lambda s: s.id)

    async def expire_secrets(self, endpoint_id: str, at: datetime) -> None:
        for secret in await self.secrets(endpoint_id):
            if secret.expires_at is None or secret.expires_at > at:
                self._staged.secrets[secret.id] = dataclasses.replace(secret, expires_at=at)


class FakeMerchantEvents(_Tables):
    def add(self, event: MerchantEvent) -> None:
        self._staged.events[event.id] = event

    async def get(self, merchant_id: str, event_id: str) -> MerchantEvent | None:
        found = self._staged.events.get(event_id) or self._store.events.get(event_id)
        return found if found is not None and found.merchant_id == merchant_id else None


class FakeDeliveries(_Tables):
    def add(self, delivery: Delivery) -> None:
        self._staged.deliveries[delivery.id] = delivery

    async def get(self, delivery_id: str, *, for_update: bool = False) -> Delivery | None:
        await asyncio.sleep(0)
        found = self._staged.deliveries.get(delivery_id) or self._store.deliveries.get(delivery_id)
        return dataclasses.replace(found) if found else None

    async def save(self, delivery: Delivery) -> None:
        self._staged.deliveries[delivery.id] = delivery

    def _pending_pair(self, delivery: Delivery) -> list[Delivery]:
        return [
            d
            for d in self._deliveries()
            if d.endpoint_id == delivery.endpoint_id
            and d.payment_id == delivery.payment_id
            and d.status is DeliveryStatus.PENDING
        ]

    async def earlier_pending(self, delivery: Delivery) -> bool:
        return any(d.id < delivery.id for d in self._pending_pair(delivery))

    async def next_pending(self, delivery: Delivery) -> Delivery | None:
        later = (d for d in self._pending_pair(delivery) if d.id > delivery.id)
        found = next(later, None)
        return dataclasses.replace(found) if found else None

    def add_attempt(self, attempt: DeliveryAttempt) -> None:
        self._staged.attempts.append(attempt)


class FakeDueDeliveries:
    def __init__(self, store: WebhookStore) -> None:
        self._store = store

    async def due(self, before: datetime, limit: int) -> Sequence[DueDelivery]:
        due = [
            d
            for d in self._store.deliveries.values()
            if d.is_pending and d.next_attempt_at is not None and d.next_attempt_at <= before
        ]
        due.sort(key=lambda d: (d.next_attempt_at, d.id))
        return [DueDelivery(d.id, d.attempts + 1) for d in due[:limit]]


@dataclass(frozen=True)
class Sent:
    url: str
    body: bytes
    headers: Mapping[str, str]


class FakeSender:
    """Answers from a script of status codes (`None`: no answer), then `default`."""

    def __init__(self, script: Sequence[int | None] = (), default: int = 200) -> None:
        self.script = list(script)
        self.default = default
        self.sent: list[Sent] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        self.sent.append(Sent(url, body, dict(headers)))
        await asyncio.sleep(0)
        status = self.script.pop(0) if self.script else self.default
        if status is None:
            return SendResult(None, "timeout", 10_000)
        error = None if 200 <= status < 300 else f"http_{status}"
        return SendResult(status, error, 5)


class FakeResolver:
    def __init__(self, hosts: Mapping[str, Sequence[str]] | None = None) -> None:
        self.hosts = dict(hosts or {})
        self.asked: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        return self.hosts.get(host, [])


class FakeRetries:
    def __init__(self) -> None:
        self.scheduled: list[tuple[str, int, float]] = []

    async def schedule(self, delivery_id: str, attempt: int, delay_s: float) -> None:
        self.scheduled.append((delivery_id, attempt, delay_s))
