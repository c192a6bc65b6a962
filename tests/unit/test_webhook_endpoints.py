"""Webhook endpoints through the real mediator with fakes: creation rules, secrets,
rotation, deletion, and the events a settled payment records in its own commit."""

from __future__ import annotations

import pytest

from gateway.application.bank import Declined
from gateway.application.merchant_events import payment_data
from gateway.domain.commands import (
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    DeliverWebhook,
    RedeliverEvent,
    RequestPayment,
    RotateWebhookSecret,
)
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.result import Err, Ok
from gateway.domain.webhook_url import UrlInvalid, UrlNotAllowed
from gateway.domain.webhooks import DeliveryStatus, EventType
from tests.unit.fakes import FakeBank, Gateway, valid_body
from tests.unit.webhook_fakes import FakeResolver
from tests.unit.webhook_support import MERCHANT, PUBLIC_URL, Webhooks


async def test_creating_an_endpoint_shows_its_secret_once_and_stores_it_sealed() -> None:
    webhooks = Webhooks()

    issued = await webhooks.endpoint()

    assert issued.secret.value.startswith("whsec_")
    assert issued.secret.value not in repr(issued)
    assert issued.endpoint.events == tuple(EventType)  # events left out: all of them
    (stored,) = webhooks.store.secrets.values()
    assert issued.secret.value.encode() not in stored.sealed
    assert webhooks.box.open(issued.endpoint.id, stored.sealed) == issued.secret.value


async def test_an_endpoint_subscribes_to_the_events_it_names() -> None:
    webhooks = Webhooks()
    events = ["payment.failed", "payment.authorized", "payment.failed"]

    issued = await webhooks.endpoint(events=events)

    assert issued.endpoint.events == (EventType.PAYMENT_AUTHORIZED, EventType.PAYMENT_FAILED)


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"events": ["payment.authorized"]}, ["url"]),
        ({"url": PUBLIC_URL, "events": []}, ["events"]),
        ({"url": PUBLIC_URL, "events": "payment.authorized"}, ["events"]),
        ({"url": PUBLIC_URL, "events": ["payment.refunded", 7]}, ["events[0]", "events[1]"]),
        ({"url": 1, "events": {}}, ["url", "events"]),
        ({"url": "not a url", "events": ["payment.refunded"]}, ["url", "events[0]"]),
        ([PUBLIC_URL], ["body"]),
    ],
)
async def test_a_bad_request_reports_every_invalid_field(body: object, params: list[str]) -> None:
    webhooks = Webhooks()

    result = await webhooks.mediator.send(CreateWebhookEndpoint(MERCHANT, body))

    assert isinstance(result, Err)
    assert isinstance(result.error, ValidationFailed)
    assert [error.param for error in result.error.errors] == params
    assert webhooks.store.endpoints == {}


@pytest.mark.parametrize(
    "url",
    [
        *("hooks.example.com/x", "ftp://hooks.example.com/", "https://", "https://exa mple.com/"),
        *("", 42, 4.2, False, [PUBLIC_URL], {"url": PUBLIC_URL}),
    ],
)
async def test_anything_but_an_absolute_http_url_is_invalid(url: object) -> None:
    result = await Webhooks().mediator.send(CreateWebhookEndpoint(MERCHANT, {"url": url}))

    assert isinstance(result, Err)
    assert isinstance(result.error, UrlInvalid)


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://hooks.example.com/", ["93.184.216.34"]),  # not https
        ("https://nowhere.example/", []),  # does not resolve
        ("https://inside.example/", ["10.0.0.7"]),
        ("https://inside.example/", ["93.184.216.34", "127.0.0.1"]),  # one inside is enough
        ("https://inside.example/", ["::ffff:192.168.0.1"]),
        ("https://inside.example/", ["fd00::1"]),
        ("https://127.0.0.1/", ["127.0.0.1"]),
    ],
)
async def test_urls_that_are_not_https_or_resolve_inside_are_not_allowed(
    url: str, addresses: list[str]
) -> None:
    resolver = FakeResolver({"hooks.example.com": addresses, "inside.example": addresses})
    resolver.hosts["127.0.0.1"] = addresses
    webhooks = Webhooks(resolver=resolver)

    result = await webhooks.mediator.send(CreateWebhookEndpoint(MERCHANT, {"url": url}))

    assert isinstance(result, Err)
    assert isinstance(result.error, UrlNotAllowed)


async def test_allowing_internal_addresses_accepts_http_to_localhost() -> None:
    webhooks = Webhooks(resolver=FakeResolver(), allow_internal=True)

    issued = await webhooks.endpoint("http://127.0.0.1:9000/hooks")

    assert issued.endpoint.url == "http://127.0.0.1:9000/hooks"


async def test_a_settled_payment_records_its_event_and_a_delivery_per_subscribed_endpoint() -> None:
    webhooks = Webhooks()
    first = await webhooks.endpoint()
    second = await webhooks.endpoint(events=["payment.authorized"])
    await webhooks.endpoint(events=["payment.declined"])  # not subscribed
    deleted = await webhooks.endpoint()
    await webhooks.mediator.send(DeleteWebhookEndpoint(MERCHANT, deleted.endpoint.id))

    payment_id = await webhooks.settled_payment()

    (event,) = webhooks.events()
    payment = webhooks.gateway.store.payments[payment_id]
    assert (event.type, event.payment_id, event.merchant_id) == (
        EventType.PAYMENT_AUTHORIZED,
        payment_id,
        MERCHANT,
    )
    assert event.data == payment_data(payment)
    assert event.data["card"] == {
        "scheme": "visa",
        "bin": "424242",
        "last4": "4242",
        "expiry_month": 12,
        "expiry_year": 2030,
        "holder_name": "Jane Doe",
    }
    deliveries = webhooks.deliveries()
    assert [d.endpoint_id for d in deliveries] == [first.endpoint.id, second.endpoint.id]
    assert all(d.status is DeliveryStatus.PENDING and d.event_id == event.id for d in deliveries)
    assert webhooks.queued() == [DeliverWebhook(d.id, 1) for d in deliveries]


async def test_a_declined_payment_records_payment_declined() -> None:
    webhooks = Webhooks(gateway=Gateway(bank=FakeBank(Declined("insufficient_funds"))))
    await webhooks.endpoint()

    await webhooks.settled_payment()

    (event,) = webhooks.events()
    assert event.type is EventType.PAYMENT_DECLINED
    assert event.data["decline_code"] == "insufficient_funds"


async def test_an_accepted_payment_that_is_still_pending_records_no_event() -> None:
    webhooks = Webhooks()
    await webhooks.endpoint()

    await webhooks.gateway.mediator.send(RequestPayment(MERCHANT, "key-1", valid_body()))

    assert webhooks.events() == []
    assert webhooks.queued() == []


async def test_rotating_keeps_the_old_secret_for_24_hours() -> None:
    webhooks = Webhooks()
    issued = await webhooks.endpoint()

    rotated = await webhooks.mediator.send(RotateWebhookSecret(MERCHANT, issued.endpoint.id))

    assert isinstance(rotated, Ok)
    assert rotated.value.secret != issued.secret
    now = webhooks.gateway.clock.now()
    old, new = sorted(webhooks.store.secrets.values(), key=lambda s: s.id)
    assert (old.expires_at - now).total_seconds() == 24 * 3600  # type: ignore[operator]
    assert new.expires_at is None


async def test_another_merchants_endpoint_or_event_is_not_found() -> None:
    webhooks = Webhooks()
    issued = await webhooks.endpoint()
    await webhooks.settled_payment()
    (event,) = webhooks.events()
    endpoint_id = issued.endpoint.id

    for command in (
        DeleteWebhookEndpoint("mer_other", endpoint_id),
        RotateWebhookSecret("mer_other", endpoint_id),
        RedeliverEvent("mer_other", event.id),
        RedeliverEvent(MERCHANT, "evt_unknown"),
    ):
        assert isinstance(await webhooks.mediator.send(command), Err)  # type: ignore[arg-type]
    result = await webhooks.mediator.send(DeleteWebhookEndpoint("mer_other", endpoint_id))
    assert result == Err(NotFound("webhook endpoint"))


async def test_redelivering_schedules_a_new_delivery_per_subscribed_endpoint() -> None:
    webhooks = Webhooks()
    issued = await webhooks.endpoint()
    await webhooks.settled_payment()
    (event,) = webhooks.events()

    result = await webhooks.mediator.send(RedeliverEvent(MERCHANT, event.id))

    assert isinstance(result, Ok)
    (scheduled,) = result.value.deliveries
    assert (scheduled.event_id, scheduled.endpoint_id) == (event.id, issued.endpoint.id)
    assert len(webhooks.deliveries()) == 2
    assert webhooks.queued()[-1] == DeliverWebhook(scheduled.id, 1)
