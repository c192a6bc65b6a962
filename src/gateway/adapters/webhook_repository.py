"""Webhook repositories of one SQL transaction (see `repository.py` for the conventions:
`add()` buffers, `get()` reads now, `save()` writes now) and the hook that records a
saved payment's events in its own transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import RowMapping

from gateway.adapters.ids import TimeOrderedIds
from gateway.adapters.orm import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_secrets,
)
from gateway.adapters.outbox import SqlOutbox
from gateway.application.merchant_events import record_payment_events
from gateway.application.webhook_ports import StoredSecret
from gateway.domain.model import Payment
from gateway.domain.webhooks import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EventType,
    MerchantEvent,
    WebhookEndpoint,
)

if TYPE_CHECKING:
    from gateway.adapters.unit_of_work import Transaction

_ids = TimeOrderedIds()


def endpoint_from_row(row: RowMapping | Mapping[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"],
        merchant_id=row["merchant_id"],
        url=row["url"],
        events=tuple(EventType(name) for name in row["events"]),
        created_at=row["created_at"],
        deleted_at=row["deleted_at"],
    )


def event_from_row(row: RowMapping) -> MerchantEvent:
    return MerchantEvent(
        id=row["id"],
        merchant_id=row["merchant_id"],
        type=EventType(row["type"]),
        payment_id=row["payment_id"],
        created_at=row["created_at"],
        data=dict(row["data"]),
    )


def event_row(event: MerchantEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "merchant_id": event.merchant_id,
        "type": event.type.value,
        "payment_id": event.payment_id,
        "created_at": event.created_at,
        "data": dict(event.data),
    }


def delivery_row(delivery: Delivery) -> dict[str, Any]:
    row = asdict(delivery)
    row["status"] = delivery.status.value
    return row


def _delivery_from_row(row: RowMapping) -> Delivery:
    return Delivery(**{**row, "status": DeliveryStatus(row["status"])})


class SqlWebhookEndpoints:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, endpoint: WebhookEndpoint) -> None:
        row = asdict(endpoint) | {"events": [event.value for event in endpoint.events]}
        self._tx.buffer(webhook_endpoints, endpoint.id, row)

    async def get(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        query = select(webhook_endpoints).where(
            webhook_endpoints.c.id == endpoint_id,
            webhook_endpoints.c.merchant_id == merchant_id,
            webhook_endpoints.c.deleted_at.is_(None),
        )
        row = (await self._tx.connection.execute(query)).mappings().first()
        return endpoint_from_row(row) if row else None

    async def delete(self, endpoint_id: str, now: datetime) -> None:
        connection = await self._tx.writing()
        await connection.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(deleted_at=now)
        )

    async def subscribed(
        self, merchant_id: str, event_type: EventType
    ) -> Sequence[WebhookEndpoint]:
        query = (
            select(webhook_endpoints)
            .where(
                webhook_endpoints.c.merchant_id == merchant_id,
                webhook_endpoints.c.deleted_at.is_(None),
            )
            .order_by(webhook_endpoints.c.id)
        )
        rows = (await self._tx.connection.execute(query)).mappings().all()
        found = (endpoint_from_row(row) for row in rows)
        return [endpoint for endpoint in found if endpoint.subscribes(event_type)]

    def add_secret(self, secret: StoredSecret) -> None:
        self._tx.buffer(webhook_secrets, secret.id, asdict(secret))

    async def secrets(self, endpoint_id: str) -> Sequence[StoredSecret]:
        query = (
            select(webhook_secrets)
            .where(webhook_secrets.c.endpoint_id == endpoint_id)
            .order_by(webhook_secrets.c.id)
        )
        rows = (await self._tx.connection.execute(query)).mappings().all()
        return [StoredSecret(**{**row, "sealed": bytes(row["sealed"])}) for row in rows]

    async def expire_secrets(self, endpoint_id: str, at: datetime) -> None:
        connection = await self._tx.writing()
        column = webhook_secrets.c.expires_at
        await connection.execute(
            update(webhook_secrets)
            .where(webhook_secrets.c.endpoint_id == endpoint_id, or_(column.is_(None), column > at))
            .values(expires_at=at)
        )


class SqlMerchantEvents:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, event: MerchantEvent) -> None:
        self._tx.buffer(events, event.id, event_row(event))

    async def get(self, merchant_id: str, event_id: str) -> MerchantEvent | None:
        query = select(events).where(events.c.id == event_id, events.c.merchant_id == merchant_id)
        row = (await self._tx.connection.execute(query)).mappings().first()
        return event_from_row(row) if row else None


class SqlDeliveries:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def add(self, delivery: Delivery) -> None:
        self._tx.buffer(webhook_deliveries, delivery.id, delivery_row(delivery))

    async def get(self, delivery_id: str, *, for_update: bool = False) -> Delivery | None:
        query = select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
        if for_update:
            await self._tx.writing()
            query = query.with_for_update()
        row = (await self._tx.connection.execute(query)).mappings().first()
        return _delivery_from_row(row) if row else None

    async def save(self, delivery: Delivery) -> None:
        row = delivery_row(delivery)
        if (pending := self._tx.pending(webhook_deliveries, delivery.id)) is not None:
            pending.update(row)
            return
        connection = await self._tx.writing()
        await connection.execute(
            update(webhook_deliveries).where(webhook_deliveries.c.id == delivery.id), row
        )

    async def earlier_pending(self, delivery: Delivery) -> bool:
        query = self._same_pair(delivery).where(webhook_deliveries.c.id < delivery.id).limit(1)
        return (await self._tx.connection.execute(query)).first() is not None

    async def next_pending(self, delivery: Delivery) -> Delivery | None:
        query = (
            self._same_pair(delivery)
            .where(webhook_deliveries.c.id > delivery.id)
            .order_by(webhook_deliveries.c.id)
            .limit(1)
        )
        row = (await self._tx.connection.execute(query)).mappings().first()
        return _delivery_from_row(row) if row else None

    @staticmethod
    def _same_pair(delivery: Delivery) -> Any:
        return select(webhook_deliveries).where(
            webhook_deliveries.c.endpoint_id == delivery.endpoint_id,
            webhook_deliveries.c.payment_id == delivery.payment_id,
            webhook_deliveries.c.status == DeliveryStatus.PENDING.value,
        )

    def add_attempt(self, attempt: DeliveryAttempt) -> None:
        self._tx.buffer(webhook_attempts, attempt.id, asdict(attempt))


class _TransactionSink:
    """The repositories `record_payment_events` writes through, on one transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.webhook_endpoints = SqlWebhookEndpoints(tx)
        self.events = SqlMerchantEvents(tx)
        self.deliveries = SqlDeliveries(tx)
        self.outbox = SqlOutbox(tx)


async def record_events(tx: Transaction, payment: Payment) -> None:
    """Called by `SqlPayments.save`: the payment's new events go into the same transaction."""
    if payment.events:
        await record_payment_events(_TransactionSink(tx), payment, _ids)
