"""The webhooks' read side over SQL, and the sweep's question: which deliveries are due."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.orm import events, webhook_attempts, webhook_deliveries, webhook_endpoints
from gateway.application.webhook_ports import DueDelivery
from gateway.application.webhook_queries import (
    AttemptView,
    Cursor,
    EndpointView,
    EventFilter,
    EventView,
    Page,
)

V = TypeVar("V")


class SqlWebhookViews:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def endpoint(self, merchant_id: str, endpoint_id: str) -> EndpointView | None:
        query = _endpoints(merchant_id).where(webhook_endpoints.c.id == endpoint_id)
        rows = await self._fetch(query)
        return _endpoint_view(rows[0]) if rows else None

    async def endpoints(self, merchant_id: str, cursor: Cursor) -> Page[EndpointView]:
        query = _endpoints(merchant_id)
        return await self._page(query, webhook_endpoints.c.id, cursor, _endpoint_view)

    async def event(self, merchant_id: str, event_id: str) -> EventView | None:
        query = select(events).where(events.c.merchant_id == merchant_id, events.c.id == event_id)
        rows = await self._fetch(query)
        return _event_view(rows[0]) if rows else None

    async def events(self, merchant_id: str, page: EventFilter) -> Page[EventView]:
        query = select(events).where(events.c.merchant_id == merchant_id)
        if page.type is not None:
            query = query.where(events.c.type == page.type.value)
        if page.payment_id is not None:
            query = query.where(events.c.payment_id == page.payment_id)
        return await self._page(query, events.c.id, page.cursor, _event_view)

    async def attempts(
        self, merchant_id: str, endpoint_id: str, cursor: Cursor
    ) -> Page[AttemptView] | None:
        if await self.endpoint(merchant_id, endpoint_id) is None:
            return None
        query = select(webhook_attempts).where(webhook_attempts.c.endpoint_id == endpoint_id)
        return await self._page(query, webhook_attempts.c.id, cursor, _attempt_view)

    async def _page(
        self,
        query: Select[Any],
        id_column: Any,
        cursor: Cursor,
        view: Callable[[RowMapping], V],
    ) -> Page[V]:
        """Newest first; one row more than the page says whether another page follows."""
        if cursor.starting_after is not None:
            query = query.where(id_column < cursor.starting_after)
        rows = await self._fetch(query.order_by(id_column.desc()).limit(cursor.limit + 1))
        return Page([view(row) for row in rows[: cursor.limit]], len(rows) > cursor.limit)

    async def _fetch(self, query: Select[Any]) -> list[RowMapping]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).mappings().all())


def _endpoints(merchant_id: str) -> Select[Any]:
    return select(webhook_endpoints).where(
        webhook_endpoints.c.merchant_id == merchant_id, webhook_endpoints.c.deleted_at.is_(None)
    )


def _endpoint_view(row: RowMapping) -> EndpointView:
    return EndpointView(row["id"], row["url"], tuple(row["events"]), row["created_at"])


def _event_view(row: RowMapping) -> EventView:
    return EventView(
        row["id"], row["type"], row["payment_id"], row["created_at"], dict(row["data"])
    )


def _attempt_view(row: RowMapping) -> AttemptView:
    return AttemptView(
        id=row["id"],
        event_id=row["event_id"],
        attempt=row["attempt"],
        status_code=row["status_code"],
        error=row["error"],
        duration_ms=row["duration_ms"],
        attempted_at=row["attempted_at"],
        next_attempt_at=row["next_attempt_at"],
    )


class SqlDueDeliveries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def due(self, before: datetime, limit: int) -> Sequence[DueDelivery]:
        column = webhook_deliveries.c.next_attempt_at
        query = (
            select(webhook_deliveries.c.id, webhook_deliveries.c.attempts)
            .where(webhook_deliveries.c.status == "pending", column <= before)
            .order_by(column)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [DueDelivery(delivery_id, attempts + 1) for delivery_id, attempts in rows]
