"""The read side of webhooks: endpoints, the merchant's events and the delivery log.

Lists are cursor-paginated like payments (newest first, `starting_after` exclusive) and
every query is scoped by merchant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from gateway.application.queries import DEFAULT_PAGE, MAX_PAGE, Query
from gateway.domain.errors import FieldError, NotFound, ValidationFailed
from gateway.domain.result import Err, Ok, Result
from gateway.domain.webhooks import EventType

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: str
    url: str
    events: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventView:
    id: str
    type: str
    payment_id: str
    created_at: datetime
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class AttemptView:
    id: str
    event_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page(Generic[V]):
    data: Sequence[V]
    has_more: bool


@dataclass(frozen=True, slots=True)
class Cursor:
    limit: int
    starting_after: str | None


@dataclass(frozen=True, slots=True)
class EventFilter:
    cursor: Cursor
    type: EventType | None
    payment_id: str | None


class WebhookViews(Protocol):
    async def endpoint(self, merchant_id: str, endpoint_id: str) -> EndpointView | None: ...

    async def endpoints(self, merchant_id: str, cursor: Cursor) -> Page[EndpointView]: ...

    async def event(self, merchant_id: str, event_id: str) -> EventView | None: ...

    async def events(self, merchant_id: str, page: EventFilter) -> Page[EventView]: ...

    async def attempts(
        self, merchant_id: str, endpoint_id: str, cursor: Cursor
    ) -> Page[AttemptView] | None:
        """The endpoint's delivery log, newest first; None if there is no such endpoint."""
        ...


@dataclass(frozen=True, slots=True)
class GetWebhookEndpoint(Query[Result[EndpointView, NotFound]]):
    merchant_id: str
    endpoint_id: str


@dataclass(frozen=True, slots=True)
class ListWebhookEndpoints(Query[Result[Page[EndpointView], ValidationFailed]]):
    merchant_id: str
    limit: str | None = None
    starting_after: str | None = None


@dataclass(frozen=True, slots=True)
class GetEvent(Query[Result[EventView, NotFound]]):
    merchant_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class ListEvents(Query[Result[Page[EventView], ValidationFailed]]):
    merchant_id: str
    limit: str | None = None
    starting_after: str | None = None
    type: str | None = None
    payment_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListDeliveryAttempts(Query[Result[Page[AttemptView], ValidationFailed | NotFound]]):
    merchant_id: str
    endpoint_id: str
    limit: str | None = None
    starting_after: str | None = None


async def get_endpoint(
    query: GetWebhookEndpoint, *, views: WebhookViews
) -> Result[EndpointView, NotFound]:
    view = await views.endpoint(query.merchant_id, query.endpoint_id)
    return Ok(view) if view else Err(NotFound("webhook endpoint"))


async def list_endpoints(
    query: ListWebhookEndpoints, *, views: WebhookViews
) -> Result[Page[EndpointView], ValidationFailed]:
    errors: list[FieldError] = []
    cursor = parse_cursor(query.limit, query.starting_after, "we", errors)
    if errors:
        return Err(ValidationFailed(tuple(errors)))
    return Ok(await views.endpoints(query.merchant_id, cursor))


async def get_event(query: GetEvent, *, views: WebhookViews) -> Result[EventView, NotFound]:
    view = await views.event(query.merchant_id, query.event_id)
    return Ok(view) if view else Err(NotFound("event"))


async def list_events(
    query: ListEvents, *, views: WebhookViews
) -> Result[Page[EventView], ValidationFailed]:
    errors: list[FieldError] = []
    cursor = parse_cursor(query.limit, query.starting_after, "evt", errors)
    event_type = None
    if query.type is not None:
        if query.type in EventType.__members__.values():
            event_type = EventType(query.type)
        else:
            message = f"must be one of {', '.join(EventType)}"
            errors.append(FieldError("type", "validation_error", message))
    if query.payment_id is not None and not 0 < len(query.payment_id) <= 64:
        errors.append(FieldError("payment_id", "validation_error", "must be a payment id"))
    if errors:
        return Err(ValidationFailed(tuple(errors)))
    page = EventFilter(cursor, event_type, query.payment_id)
    return Ok(await views.events(query.merchant_id, page))


async def list_attempts(
    query: ListDeliveryAttempts, *, views: WebhookViews
) -> Result[Page[AttemptView], ValidationFailed | NotFound]:
    errors: list[FieldError] = []
    cursor = parse_cursor(query.limit, query.starting_after, "wha", errors)
    if errors:
        return Err(ValidationFailed(tuple(errors)))
    page = await views.attempts(query.merchant_id, query.endpoint_id, cursor)
    return Ok(page) if page is not None else Err(NotFound("webhook endpoint"))


def parse_cursor(
    limit: str | None, starting_after: str | None, prefix: str, errors: list[FieldError]
) -> Cursor:
    size = DEFAULT_PAGE
    if limit is not None:
        digits = limit.isascii() and limit.isdigit() and len(limit) <= 4
        size = int(limit) if digits else 0
        if not 1 <= size <= MAX_PAGE:
            errors.append(FieldError("limit", "validation_error", f"must be 1-{MAX_PAGE}"))
    if starting_after is not None and not (
        starting_after.startswith(f"{prefix}_") and len(starting_after) <= 64
    ):
        message = f"must be an id starting with {prefix}_"
        errors.append(FieldError("starting_after", "validation_error", message))
    return Cursor(size, starting_after)
