"""`DeliverWebhook`: one attempt of one delivery, in three steps.

1. Claim (one transaction): a delivery that is pending, whose attempt this is, and that no
   earlier pending delivery for the same payment and endpoint holds back, gets its
   attempt counted; if it never reports back it is due again after `LEASE`.
2. POST the event, signed with every active secret at this moment (no transaction open).
3. Record (one transaction): the attempt for the log; a 2xx delivers it, anything else
   schedules the next attempt or, past the schedule's end, fails it. A delivery that ends
   releases the next one held behind it.

A repeated or late message finds the attempt already made and does nothing (`SKIPPED`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.application.merchant_events import timestamp
from gateway.application.ports import Clock, IdGenerator, UnitOfWork
from gateway.application.webhook_ports import SecretBox, SendResult, WebhookRetries, WebhookSender
from gateway.domain import signature
from gateway.domain.commands import DeliverWebhook
from gateway.domain.retry_schedule import RetrySchedule
from gateway.domain.webhooks import Delivery, DeliveryAttempt, DeliveryOutcome, MerchantEvent

LEASE = timedelta(seconds=60)
SIGNATURE_HEADER = "Gateway-Signature"
EVENT_ID_HEADER = "Gateway-Event-Id"


@dataclass(frozen=True, slots=True)
class DeliverWebhookDeps:
    clock: Clock
    ids: IdGenerator
    box: SecretBox
    sender: WebhookSender
    retries: WebhookRetries
    schedule: RetrySchedule
    draw: Callable[[], float] = random.random


@dataclass(frozen=True, slots=True)
class _Claimed:
    delivery: Delivery
    number: int
    url: str
    event: MerchantEvent
    secrets: tuple[str, ...]


def event_body(event: MerchantEvent) -> bytes:
    """What the endpoint receives, the same bytes on every attempt."""
    document = {
        "id": event.id,
        "type": event.type.value,
        "created_at": timestamp(event.created_at),
        "data": event.data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


async def deliver_webhook(
    cmd: DeliverWebhook, uow: UnitOfWork, *, deps: DeliverWebhookDeps
) -> DeliveryOutcome:
    async with uow:
        claimed = await _claim(cmd, uow, deps)
        await uow.commit()
    if isinstance(claimed, DeliveryOutcome):
        return claimed
    started = deps.clock.now()
    body = event_body(claimed.event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "gateway-webhooks/1",
        SIGNATURE_HEADER: signature.sign(body, claimed.secrets, int(started.timestamp())),
        EVENT_ID_HEADER: claimed.event.id,
    }
    result = await deps.sender.post(claimed.url, body, headers)
    async with uow:
        outcome, retry_in = await _record(claimed, result, started, uow, deps)
        await uow.commit()
    if retry_in is not None:
        await deps.retries.schedule(cmd.delivery_id, claimed.number + 1, retry_in)
    return outcome


async def _claim(
    cmd: DeliverWebhook, uow: UnitOfWork, deps: DeliverWebhookDeps
) -> _Claimed | DeliveryOutcome:
    delivery = await uow.deliveries.get(cmd.delivery_id, for_update=True)
    if delivery is None or not delivery.is_pending or cmd.attempt != delivery.attempts + 1:
        return DeliveryOutcome.SKIPPED
    now = deps.clock.now()
    if await uow.deliveries.earlier_pending(delivery):
        delivery.hold()
        await uow.deliveries.save(delivery)
        return DeliveryOutcome.HELD
    endpoint = await uow.webhook_endpoints.get(delivery.merchant_id, delivery.endpoint_id)
    event = await uow.events.get(delivery.merchant_id, delivery.event_id)
    if endpoint is None or event is None:  # the endpoint was deleted meanwhile
        delivery.fail()
        await uow.deliveries.save(delivery)
        await _release_next(uow, delivery, now)
        return DeliveryOutcome.FAILED
    stored = await uow.webhook_endpoints.secrets(endpoint.id)
    opened = (deps.box.open(endpoint.id, s.sealed) for s in stored if s.active(now))
    number = delivery.claim(now, LEASE)
    await uow.deliveries.save(delivery)
    secrets = tuple(secret for secret in opened if secret is not None)
    return _Claimed(delivery, number, endpoint.url, event, secrets)


async def _record(
    claimed: _Claimed,
    result: SendResult,
    started: datetime,
    uow: UnitOfWork,
    deps: DeliverWebhookDeps,
) -> tuple[DeliveryOutcome, float | None]:
    now = deps.clock.now()
    delivery = await uow.deliveries.get(claimed.delivery.id, for_update=True)
    current = delivery is not None and delivery.is_pending and delivery.attempts == claimed.number
    delay = None if result.delivered else deps.schedule.delay_after(claimed.number, deps.draw())
    next_at = now + timedelta(seconds=delay) if delay is not None else None
    uow.deliveries.add_attempt(_attempt_of(claimed, result, started, next_at, deps.ids))
    if delivery is None or not current:  # given up on meanwhile, or taken over after the lease
        return DeliveryOutcome.SKIPPED, None
    if result.delivered:
        delivery.succeed(now)
        outcome = DeliveryOutcome.DELIVERED
    elif next_at is not None:
        delivery.retry_at(next_at)
        outcome = DeliveryOutcome.RETRYING
    else:
        delivery.fail()
        outcome = DeliveryOutcome.FAILED
    await uow.deliveries.save(delivery)
    if not delivery.is_pending:
        await _release_next(uow, delivery, now)
    return outcome, delay


def _attempt_of(
    claimed: _Claimed,
    result: SendResult,
    started: datetime,
    next_at: datetime | None,
    ids: IdGenerator,
) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=ids.new("wha"),
        delivery_id=claimed.delivery.id,
        event_id=claimed.event.id,
        endpoint_id=claimed.delivery.endpoint_id,
        attempt=claimed.number,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
        attempted_at=started,
        next_attempt_at=next_at,
    )


async def _release_next(uow: UnitOfWork, delivery: Delivery, now: datetime) -> None:
    """The next delivery for the same payment and endpoint may go now."""
    following = await uow.deliveries.next_pending(delivery)
    if following is None:
        return
    following.release(now)
    await uow.deliveries.save(following)
    uow.outbox.add(DeliverWebhook(following.id, following.attempts + 1))
