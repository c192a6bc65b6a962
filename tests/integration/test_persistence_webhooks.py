"""Webhook repositories, views and the due-deliveries sweep on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.orm import events, outbox, webhook_deliveries
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.adapters.webhook_views import SqlDueDeliveries, SqlWebhookViews
from gateway.application.webhook_ports import DueDelivery, StoredSecret
from gateway.application.webhook_queries import Cursor, EventFilter
from gateway.domain.merchant import Merchant
from gateway.domain.webhooks import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    EventType,
    WebhookEndpoint,
)
from tests.fixtures.database import ids, stored_payment

ALL = tuple(EventType)


async def stored_endpoint(
    engine: AsyncEngine, merchant_id: str, events_: tuple[EventType, ...] = ALL
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        ids.new("we"), merchant_id, "https://hooks.example.com/", events_, datetime.now(UTC)
    )
    async with SqlUnitOfWork(engine) as uow:
        uow.webhook_endpoints.add(endpoint)
        uow.webhook_endpoints.add_secret(
            StoredSecret(ids.new("whs"), endpoint.id, b"sealed", datetime.now(UTC))
        )
        await uow.commit()
    return endpoint


async def settle(engine: AsyncEngine, payment_id: str, *, commit: bool = True) -> None:
    async with SqlUnitOfWork(engine) as uow:
        payment = await uow.payments.get(payment_id, for_update=True)
        assert payment is not None
        payment.authorize("A1B2C3", datetime.now(UTC))
        await uow.payments.save(payment)
        if commit:
            await uow.commit()


async def count(engine: AsyncEngine, table: object, *where: object) -> int:
    async with engine.connect() as connection:
        query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
        return int(await connection.scalar(query) or 0)


async def test_settling_a_payment_writes_its_event_deliveries_and_outbox_rows_with_it(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    subscribed = await stored_endpoint(engine, merchant.id)
    await stored_endpoint(engine, merchant.id, (EventType.PAYMENT_DECLINED,))
    payment = await stored_payment(engine, merchant.id, reference="ORD-1")

    await settle(engine, payment.id)

    views = SqlWebhookViews(engine)
    page = await views.events(merchant.id, EventFilter(Cursor(10, None), None, None))
    (event,) = page.data
    assert (event.type, event.payment_id) == ("payment.authorized", payment.id)
    assert event.data["status"] == "authorized"
    assert event.data["reference"] == "ORD-1"
    assert event.data["card"]["last4"] == "4242"  # type: ignore[index]
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.events.get(merchant.id, event.id) is not None
        assert await uow.events.get("mer_other", event.id) is None
    async with engine.connect() as connection:
        rows = (await connection.execute(select(webhook_deliveries))).mappings().all()
        messages = (
            (await connection.execute(select(outbox).where(outbox.c.kind == "DeliverWebhook")))
            .mappings()
            .all()
        )
    assert [(r["endpoint_id"], r["status"], r["attempts"]) for r in rows] == [
        (subscribed.id, "pending", 0)
    ]
    assert [m["payload"] for m in messages] == [{"delivery_id": rows[0]["id"], "attempt": "1"}]


async def test_a_settlement_rolled_back_leaves_no_event(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    await stored_endpoint(engine, merchant.id)
    payment = await stored_payment(engine, merchant.id)

    await settle(engine, payment.id, commit=False)

    assert await count(engine, events) == 0
    assert await count(engine, webhook_deliveries) == 0
    assert await count(engine, outbox, outbox.c.kind == "DeliverWebhook") == 0


async def test_endpoints_are_scoped_by_merchant_and_disappear_when_deleted(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    endpoint = await stored_endpoint(engine, merchant.id, (EventType.PAYMENT_FAILED,))
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.webhook_endpoints.get(merchant.id, endpoint.id) == endpoint
        assert await uow.webhook_endpoints.get("mer_other", endpoint.id) is None
        assert await uow.webhook_endpoints.subscribed(merchant.id, EventType.PAYMENT_FAILED) == [
            endpoint
        ]
        assert await uow.webhook_endpoints.subscribed(merchant.id, ALL[0]) == []
        await uow.webhook_endpoints.delete(endpoint.id, datetime.now(UTC))
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.webhook_endpoints.get(merchant.id, endpoint.id) is None
        assert await uow.webhook_endpoints.subscribed(merchant.id, EventType.PAYMENT_FAILED) == []
    assert await SqlWebhookViews(engine).endpoint(merchant.id, endpoint.id) is None


async def test_expiring_secrets_keeps_an_earlier_expiry(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    endpoint = await stored_endpoint(engine, merchant.id)
    soon = datetime.now(UTC) + timedelta(hours=1)
    later = soon + timedelta(hours=24)
    async with SqlUnitOfWork(engine) as uow:
        await uow.webhook_endpoints.expire_secrets(endpoint.id, soon)
        uow.webhook_endpoints.add_secret(
            StoredSecret(ids.new("whs"), endpoint.id, b"new", datetime.now(UTC))
        )
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        await uow.webhook_endpoints.expire_secrets(endpoint.id, later)
        await uow.commit()
        first, second = await uow.webhook_endpoints.secrets(endpoint.id)
    assert (first.sealed, first.expires_at) == (b"sealed", soon)
    assert (second.sealed, second.expires_at) == (b"new", later)


async def stored_deliveries(engine: AsyncEngine, merchant: Merchant, how_many: int) -> list[str]:
    endpoint = await stored_endpoint(engine, merchant.id)
    payment = await stored_payment(engine, merchant.id)
    await settle(engine, payment.id)  # one delivery
    async with SqlUnitOfWork(engine) as uow:
        (event,) = (
            await SqlWebhookViews(engine).events(
                merchant.id, EventFilter(Cursor(1, None), None, None)
            )
        ).data
        for _ in range(how_many - 1):
            uow.deliveries.add(
                Delivery(
                    ids.new("whd"),
                    event.id,
                    endpoint.id,
                    merchant.id,
                    payment.id,
                    datetime.now(UTC),
                )
            )
        await uow.commit()
    async with engine.connect() as connection:
        query = select(webhook_deliveries.c.id).order_by(webhook_deliveries.c.id)
        return list(await connection.scalars(query))


async def test_a_pending_delivery_holds_back_the_later_ones_for_its_payment_and_endpoint(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    first_id, second_id, third_id = await stored_deliveries(engine, merchant, 3)

    async with SqlUnitOfWork(engine) as uow:
        first = await uow.deliveries.get(first_id, for_update=True)
        second = await uow.deliveries.get(second_id)
        assert first is not None
        assert second is not None
        assert not await uow.deliveries.earlier_pending(first)
        assert await uow.deliveries.earlier_pending(second)
        assert (await uow.deliveries.next_pending(first)).id == second_id  # type: ignore[union-attr]
        first.succeed(datetime.now(UTC))
        await uow.deliveries.save(first)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        second = await uow.deliveries.get(second_id)
        assert second is not None
        assert not await uow.deliveries.earlier_pending(second)
        assert (await uow.deliveries.next_pending(second)).id == third_id  # type: ignore[union-attr]
        stored = await uow.deliveries.get(first_id)
    assert stored is not None
    assert (stored.status, stored.next_attempt_at) == (DeliveryStatus.DELIVERED, None)


async def test_the_delivery_log_and_due_deliveries(engine: AsyncEngine, merchant: Merchant) -> None:
    (delivery_id,) = await stored_deliveries(engine, merchant, 1)
    now = datetime.now(UTC)
    async with SqlUnitOfWork(engine) as uow:
        delivery = await uow.deliveries.get(delivery_id, for_update=True)
        assert delivery is not None
        number = delivery.claim(now, timedelta(seconds=60))
        delivery.retry_at(now + timedelta(seconds=5))
        await uow.deliveries.save(delivery)
        attempt = DeliveryAttempt(
            ids.new("wha"), delivery.id, delivery.event_id, delivery.endpoint_id, number,
            500, "http_500", 12, now, now + timedelta(seconds=5),
        )  # fmt: skip
        uow.deliveries.add_attempt(attempt)
        await uow.commit()

    due = SqlDueDeliveries(engine)
    assert await due.due(now, 10) == []
    assert await due.due(now + timedelta(seconds=5), 10) == [DueDelivery(delivery_id, 2)]
    views = SqlWebhookViews(engine)
    page = await views.attempts(merchant.id, delivery.endpoint_id, Cursor(10, None))
    assert page is not None
    (view,) = page.data
    assert (view.attempt, view.status_code, view.error, view.duration_ms) == (
        1,
        500,
        "http_500",
        12,
    )
    assert view.attempted_at == now
    assert await views.attempts("mer_other", delivery.endpoint_id, Cursor(10, None)) is None


async def test_lists_are_newest_first_and_paginated(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    created = [await stored_endpoint(engine, merchant.id) for _ in range(3)]
    views = SqlWebhookViews(engine)

    first = await views.endpoints(merchant.id, Cursor(2, None))
    second = await views.endpoints(merchant.id, Cursor(2, first.data[-1].id))

    assert [e.id for e in first.data] == [created[2].id, created[1].id]
    assert first.has_more
    assert [e.id for e in second.data] == [created[0].id]
    assert not second.has_more
    assert (await views.endpoints("mer_other", Cursor(2, None))).data == []
