"""`DeliverWebhook` through the real mediator with fakes: signing, retries on the schedule,
the delivery log, per-payment order, rotation and the sweep."""

from __future__ import annotations

import json

from gateway.domain import signature
from gateway.domain.commands import (
    DeleteWebhookEndpoint,
    DeliverWebhook,
    RedeliverEvent,
    RotateWebhookSecret,
)
from gateway.domain.result import Ok
from gateway.domain.webhooks import DeliveryOutcome, DeliveryStatus
from tests.unit.webhook_fakes import FakeSender
from tests.unit.webhook_support import MERCHANT, Webhooks


def verify(webhooks: Webhooks, body: bytes, header: str, secret: str) -> bool:
    """As the receiver checks it, at the moment it was sent."""
    sent_at = int(header.split(",")[0].removeprefix("t="))
    return isinstance(signature.verify(body, header, secret, now=sent_at), Ok)


async def test_a_2xx_answer_delivers_the_signed_event() -> None:
    webhooks = Webhooks()
    issued = await webhooks.endpoint()
    payment_id = await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()

    outcome = await webhooks.deliver(delivery)

    assert outcome is DeliveryOutcome.DELIVERED
    (sent,) = webhooks.sender.sent
    (event,) = webhooks.events()
    document = json.loads(sent.body)
    assert document == {
        "id": event.id,
        "type": "payment.authorized",
        "created_at": "2026-11-23T18:00:00Z",
        "data": event.data,
    }
    assert document["data"]["id"] == payment_id
    assert sent.url == issued.endpoint.url
    assert sent.headers["Gateway-Event-Id"] == event.id
    assert verify(webhooks, sent.body, sent.headers["Gateway-Signature"], issued.secret.value)
    stored = webhooks.store.deliveries[delivery.id]
    assert (stored.status, stored.attempts) == (DeliveryStatus.DELIVERED, 1)
    (attempt,) = webhooks.store.attempts
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, None)
    assert attempt.next_attempt_at is None
    assert webhooks.retries.scheduled == []


async def test_a_failed_attempt_is_retried_after_the_scheduled_delay() -> None:
    webhooks = Webhooks(sender=FakeSender([500]))
    await webhooks.endpoint()
    await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()
    now = webhooks.gateway.clock.now()

    outcome = await webhooks.deliver(delivery)

    assert outcome is DeliveryOutcome.RETRYING
    assert webhooks.retries.scheduled == [(delivery.id, 2, 1.0)]
    stored = webhooks.store.deliveries[delivery.id]
    assert stored.status is DeliveryStatus.PENDING
    assert (stored.next_attempt_at - now).total_seconds() == 1.0  # type: ignore[operator]
    (attempt,) = webhooks.store.attempts
    assert (attempt.status_code, attempt.error) == (500, "http_500")
    assert attempt.next_attempt_at == stored.next_attempt_at


async def test_the_schedule_ends_in_failure_after_its_last_attempt() -> None:
    webhooks = Webhooks(sender=FakeSender([500, None, 503, 302]))  # "1,1,2": 4 attempts
    await webhooks.endpoint()
    await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()

    outcomes = []
    for _ in range(4):
        outcomes.append(await webhooks.deliver(delivery))
        webhooks.gateway.clock.advance(5)

    assert outcomes == [DeliveryOutcome.RETRYING] * 3 + [DeliveryOutcome.FAILED]
    assert [s[1:] for s in webhooks.retries.scheduled] == [(2, 1.0), (3, 1.0), (4, 2.0)]
    assert webhooks.store.deliveries[delivery.id].status is DeliveryStatus.FAILED
    attempts = webhooks.store.attempts
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert [a.error for a in attempts] == ["http_500", "timeout", "http_503", "http_302"]
    assert attempts[-1].next_attempt_at is None
    assert await webhooks.deliver(delivery, attempt=5) is DeliveryOutcome.SKIPPED
    assert len(webhooks.sender.sent) == 4


async def test_every_attempt_has_the_same_event_and_a_fresh_signature() -> None:
    webhooks = Webhooks(sender=FakeSender([500]))
    issued = await webhooks.endpoint()
    await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()

    await webhooks.deliver(delivery)
    webhooks.gateway.clock.advance(61)
    await webhooks.deliver(delivery)

    first, second = webhooks.sender.sent
    assert first.body == second.body
    assert first.headers["Gateway-Event-Id"] == second.headers["Gateway-Event-Id"]
    assert first.headers["Gateway-Signature"] != second.headers["Gateway-Signature"]
    assert second.headers["Gateway-Signature"].startswith(
        f"t={int(webhooks.gateway.clock.now().timestamp())},"
    )
    assert verify(webhooks, second.body, second.headers["Gateway-Signature"], issued.secret.value)


async def test_a_repeated_or_early_message_makes_no_attempt() -> None:
    webhooks = Webhooks()
    await webhooks.endpoint()
    await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()

    assert await webhooks.deliver(delivery, attempt=2) is DeliveryOutcome.SKIPPED
    assert await webhooks.deliver(delivery, attempt=1) is DeliveryOutcome.DELIVERED
    assert await webhooks.deliver(delivery, attempt=1) is DeliveryOutcome.SKIPPED
    assert await webhooks.mediator.send(DeliverWebhook("whd_unknown")) is DeliveryOutcome.SKIPPED
    assert len(webhooks.sender.sent) == 1


async def test_during_a_rotation_both_secrets_sign_until_the_old_one_expires() -> None:
    webhooks = Webhooks(sender=FakeSender(default=500))
    issued = await webhooks.endpoint()
    rotated = await webhooks.mediator.send(RotateWebhookSecret(MERCHANT, issued.endpoint.id))
    assert isinstance(rotated, Ok)
    await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()

    await webhooks.deliver(delivery)
    webhooks.gateway.clock.advance(24 * 3600 + 1)
    await webhooks.deliver(delivery)

    during, after = webhooks.sender.sent
    header = during.headers["Gateway-Signature"]
    assert header.count("v1=") == 2
    for secret in (issued.secret.value, rotated.value.secret.value):
        assert verify(webhooks, during.body, header, secret)
    assert after.headers["Gateway-Signature"].count("v1=") == 1
    header = after.headers["Gateway-Signature"]
    assert verify(webhooks, after.body, header, rotated.value.secret.value)
    assert not verify(webhooks, after.body, header, issued.secret.value)


async def test_a_later_event_waits_while_an_earlier_one_for_the_payment_is_retried() -> None:
    webhooks = Webhooks(sender=FakeSender([500]))
    await webhooks.endpoint()
    await webhooks.settled_payment()
    (earlier,) = webhooks.deliveries()
    assert await webhooks.deliver(earlier) is DeliveryOutcome.RETRYING
    # A second event for the same payment and endpoint (a redelivery, here).
    (event,) = webhooks.events()
    await webhooks.mediator.send(RedeliverEvent(MERCHANT, event.id))
    later = webhooks.deliveries()[1]

    assert await webhooks.deliver(later) is DeliveryOutcome.HELD
    assert webhooks.store.deliveries[later.id].next_attempt_at is None
    assert len(webhooks.sender.sent) == 1

    webhooks.gateway.clock.advance(1)
    assert await webhooks.deliver(earlier) is DeliveryOutcome.DELIVERED
    assert webhooks.queued()[-1] == DeliverWebhook(later.id, 1)  # released
    assert webhooks.store.deliveries[later.id].next_attempt_at == webhooks.gateway.clock.now()
    assert await webhooks.deliver(later) is DeliveryOutcome.DELIVERED
    assert len(webhooks.sender.sent) == 3


async def test_a_delivery_to_a_deleted_endpoint_fails_without_a_request() -> None:
    webhooks = Webhooks()
    issued = await webhooks.endpoint()
    await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()
    await webhooks.mediator.send(DeleteWebhookEndpoint(MERCHANT, issued.endpoint.id))

    assert await webhooks.deliver(delivery) is DeliveryOutcome.FAILED
    assert webhooks.sender.sent == []


async def test_the_sweep_makes_a_retry_once_it_is_due_even_after_a_restart() -> None:
    webhooks = Webhooks(sender=FakeSender([500]))
    await webhooks.endpoint()
    await webhooks.settled_payment()
    (delivery,) = webhooks.deliveries()
    await webhooks.deliver(delivery)  # fails: due again in 1 s
    restarted = Webhooks(gateway=webhooks.gateway, sender=webhooks.sender)

    assert await restarted.dispatcher.sweep_once() == 0  # not due yet
    webhooks.gateway.clock.advance(1)
    assert await restarted.dispatcher.sweep_once() == 1
    await restarted.dispatcher.drain(5)

    assert webhooks.store.deliveries[delivery.id].status is DeliveryStatus.DELIVERED
    assert [a.attempt for a in webhooks.store.attempts] == [1, 2]
