"""The webhook handlers wired with fakes next to the payment `Gateway`, sharing its store."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from gateway.adapters.crypto import AesGcmSecretBox
from gateway.application.mediator import Mediator
from gateway.application.webhook_delivery import DeliverWebhookDeps, deliver_webhook
from gateway.application.webhook_dispatcher import WebhookDispatcher
from gateway.application.webhook_endpoints import (
    WebhookEndpointDeps,
    create_endpoint,
    delete_endpoint,
    redeliver_event,
    rotate_secret,
)
from gateway.domain.commands import (
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    DeliverWebhook,
    IssuedEndpoint,
    MakePayment,
    PaymentAccepted,
    RedeliverEvent,
    RequestPayment,
    RotateWebhookSecret,
)
from gateway.domain.result import Ok
from gateway.domain.retry_schedule import RetrySchedule
from gateway.domain.webhooks import Delivery, DeliveryOutcome, MerchantEvent
from tests.unit.fakes import FakeUnitOfWork, Gateway, valid_body
from tests.unit.webhook_fakes import (
    FakeDueDeliveries,
    FakeResolver,
    FakeRetries,
    FakeSender,
)

SECRETS_KEY = bytes(range(64, 96))
MERCHANT = "mer_1"
PUBLIC_HOST = "hooks.example.com"
PUBLIC_URL = f"https://{PUBLIC_HOST}/gateway"


def public_resolver() -> FakeResolver:
    return FakeResolver({PUBLIC_HOST: ["93.184.216.34", "2606:2800:220:1::248"]})


@dataclass
class Webhooks:
    gateway: Gateway = field(default_factory=Gateway)
    sender: FakeSender = field(default_factory=FakeSender)
    resolver: FakeResolver = field(default_factory=public_resolver)
    retries: FakeRetries = field(default_factory=FakeRetries)
    schedule: RetrySchedule = field(default_factory=lambda: RetrySchedule((1.0, 1.0, 2.0)))
    allow_internal: bool = False

    def __post_init__(self) -> None:
        g = self.gateway
        self.box = AesGcmSecretBox(SECRETS_KEY)
        ids = g.store.webhooks.ids  # the ids the store's commits give events and deliveries
        endpoints = WebhookEndpointDeps(g.clock, ids, self.box, self.resolver, self.allow_internal)
        delivery = DeliverWebhookDeps(
            g.clock, ids, self.box, self.sender, self.retries, self.schedule, draw=lambda: 0.5
        )
        self.mediator = Mediator(
            commands={
                CreateWebhookEndpoint: functools.partial(create_endpoint, deps=endpoints),
                DeleteWebhookEndpoint: functools.partial(delete_endpoint, deps=endpoints),
                RotateWebhookSecret: functools.partial(rotate_secret, deps=endpoints),
                RedeliverEvent: functools.partial(redeliver_event, deps=endpoints),
                DeliverWebhook: functools.partial(deliver_webhook, deps=delivery),
            },
            queries={},
            uow_factory=lambda: FakeUnitOfWork(g.store),
        )
        self.dispatcher = WebhookDispatcher(
            FakeDueDeliveries(g.store.webhooks), self.mediator.send, g.clock
        )

    @property
    def store(self) -> Any:
        return self.gateway.store.webhooks

    async def endpoint(self, url: str = PUBLIC_URL, **body: object) -> IssuedEndpoint:
        result = await self.mediator.send(CreateWebhookEndpoint(MERCHANT, {"url": url, **body}))
        assert isinstance(result, Ok), result
        return result.value

    async def settled_payment(self, card: str = "4242424242424242") -> str:
        """A payment requested and taken to the (fake) bank; returns its id."""
        g = self.gateway
        accepted = await g.mediator.send(
            RequestPayment(MERCHANT, f"key-{card}-{g.ids.count}", valid_body(card_number=card))
        )
        assert isinstance(accepted, Ok)
        assert isinstance(accepted.value, PaymentAccepted)
        job = accepted.value.job
        await g.mediator.send(MakePayment(job.payment_id, job.id, job.merchant_id))
        return job.payment_id

    def deliveries(self) -> list[Delivery]:
        return sorted(self.store.deliveries.values(), key=lambda d: d.id)

    def events(self) -> list[MerchantEvent]:
        return sorted(self.store.events.values(), key=lambda e: e.id)

    def queued(self) -> list[DeliverWebhook]:
        return [m for m in self.gateway.store.outbox if isinstance(m, DeliverWebhook)]

    async def deliver(self, delivery: Delivery, attempt: int | None = None) -> DeliveryOutcome:
        current = self.store.deliveries[delivery.id]
        number = current.attempts + 1 if attempt is None else attempt
        return await self.mediator.send(DeliverWebhook(delivery.id, number))
