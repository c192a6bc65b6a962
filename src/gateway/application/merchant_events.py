"""Domain events become merchant events, written with the state change that raised them.

A unit of work calls `record_payment_events` when it saves a payment: one `events` row
per domain event, a delivery per subscribed endpoint, and a `DeliverWebhook` outbox row
per delivery — all in the transaction that settles the payment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from gateway.application.ports import IdGenerator, Outbox
from gateway.application.webhook_ports import Deliveries, MerchantEvents, WebhookEndpoints
from gateway.domain.commands import DeliverWebhook
from gateway.domain.events import Event
from gateway.domain.model import Payment
from gateway.domain.webhooks import Delivery, EventType, MerchantEvent, WebhookEndpoint


class EventSink(Protocol):
    """What recording events needs of a unit of work."""

    @property
    def webhook_endpoints(self) -> WebhookEndpoints: ...

    @property
    def events(self) -> MerchantEvents: ...

    @property
    def deliveries(self) -> Deliveries: ...

    @property
    def outbox(self) -> Outbox: ...


def timestamp(moment: datetime) -> str:
    """UTC to the second with a `Z`, as every API response writes times."""
    utc = moment.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"


def payment_data(payment: Payment) -> dict[str, object]:
    """The payment exactly as `GET /payments/{id}` shows it (card: bin and last 4 only)."""
    card = payment.card
    return {
        "id": payment.id,
        "status": payment.status.value,
        "amount": payment.money.minor_units,
        "currency": payment.money.currency.code,
        "reference": payment.reference.value if payment.reference else None,
        "metadata": dict(payment.metadata.entries),
        "card": {
            "scheme": card.scheme.value,
            "bin": card.bin,
            "last4": card.last4,
            "expiry_month": card.expiry_month,
            "expiry_year": card.expiry_year,
            "holder_name": card.holder_name,
        },
        "decline_code": payment.decline_code,
        "authorization_code": payment.authorization_code,
        "created_at": timestamp(payment.created_at),
        "updated_at": timestamp(payment.updated_at),
        "links": {"self": f"/payments/{payment.id}"},
    }


async def record_payment_events(sink: EventSink, payment: Payment, ids: IdGenerator) -> None:
    """Records the payment's new events (and takes them off the payment)."""
    data = payment_data(payment)
    for domain_event in payment.events:
        event = _merchant_event(payment, domain_event, data, ids)
        sink.events.add(event)
        await fan_out(sink, event, ids, domain_event.occurred_at)
    payment.events.clear()


def payment_events(
    payment: Payment, endpoints: Sequence[WebhookEndpoint], ids: IdGenerator
) -> tuple[list[MerchantEvent], list[Delivery]]:
    """What `record_payment_events` records, given the merchant's endpoints: the payment's
    new events (taken off the payment) and a delivery per endpoint subscribed to each.
    Each delivery's first `DeliverWebhook` is the caller's to write."""
    data = payment_data(payment)
    events, deliveries = [], []
    for domain_event in payment.events:
        event = _merchant_event(payment, domain_event, data, ids)
        events.append(event)
        deliveries += [
            _delivery(event, endpoint, ids, domain_event.occurred_at)
            for endpoint in endpoints
            if endpoint.subscribes(event.type)
        ]
    payment.events.clear()
    return events, deliveries


def _merchant_event(
    payment: Payment, domain_event: Event, data: dict[str, object], ids: IdGenerator
) -> MerchantEvent:
    return MerchantEvent(
        id=ids.new("evt"),
        merchant_id=payment.merchant_id,
        type=EventType.of(domain_event),
        payment_id=payment.id,
        created_at=domain_event.occurred_at,
        data=data,
    )


def _delivery(
    event: MerchantEvent, endpoint: WebhookEndpoint, ids: IdGenerator, now: datetime
) -> Delivery:
    return Delivery(
        id=ids.new("whd"),
        event_id=event.id,
        endpoint_id=endpoint.id,
        merchant_id=event.merchant_id,
        payment_id=event.payment_id,
        created_at=now,
        next_attempt_at=now,
    )


async def fan_out(
    sink: EventSink, event: MerchantEvent, ids: IdGenerator, now: datetime
) -> list[Delivery]:
    """A delivery, and its first `DeliverWebhook`, per endpoint subscribed to the event."""
    deliveries = []
    for endpoint in await sink.webhook_endpoints.subscribed(event.merchant_id, event.type):
        delivery = _delivery(event, endpoint, ids, now)
        sink.deliveries.add(delivery)
        sink.outbox.add(DeliverWebhook(delivery.id, 1))
        deliveries.append(delivery)
    return deliveries
