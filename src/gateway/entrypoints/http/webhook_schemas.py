"""The webhooks' HTTP contract as msgspec Structs, and how read models become them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from msgspec import Struct

from gateway.application.queries import DEFAULT_PAGE
from gateway.application.webhook_queries import AttemptView, EndpointView, EventView, Page
from gateway.domain.commands import IssuedEndpoint, Redelivery
from gateway.domain.webhooks import WebhookEndpoint
from gateway.entrypoints.http.schemas import timestamp


class EndpointBody(Struct):
    id: str
    url: str
    events: list[str]
    created_at: datetime

    @classmethod
    def of_view(cls, view: EndpointView) -> EndpointBody:
        return cls(view.id, view.url, list(view.events), timestamp(view.created_at))

    @classmethod
    def of_endpoint(cls, endpoint: WebhookEndpoint) -> EndpointBody:
        events = [event.value for event in endpoint.events]
        return cls(endpoint.id, endpoint.url, events, timestamp(endpoint.created_at))


class EndpointWithSecret(Struct):
    """Only when the endpoint is created or its secret rotated: the secret is not kept
    in clear, so it is never shown again."""

    id: str
    url: str
    events: list[str]
    created_at: datetime
    secret: str

    @classmethod
    def of_issued(cls, issued: IssuedEndpoint) -> EndpointWithSecret:
        body = EndpointBody.of_endpoint(issued.endpoint)
        return cls(body.id, body.url, body.events, body.created_at, issued.secret.value)


class EndpointList(Struct):
    data: list[EndpointBody]
    has_more: bool
    next: str | None


class EventBody(Struct):
    """The event exactly as the endpoints receive it."""

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]

    @classmethod
    def of_view(cls, view: EventView) -> EventBody:
        return cls(view.id, view.type, timestamp(view.created_at), dict(view.data))


class EventList(Struct):
    data: list[EventBody]
    has_more: bool
    next: str | None


class AttemptBody(Struct):
    id: str
    event_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
    next_attempt_at: datetime | None

    @classmethod
    def of_view(cls, view: AttemptView) -> AttemptBody:
        later = view.next_attempt_at
        return cls(
            id=view.id,
            event_id=view.event_id,
            attempt=view.attempt,
            status_code=view.status_code,
            error=view.error,
            duration_ms=view.duration_ms,
            attempted_at=timestamp(view.attempted_at),
            next_attempt_at=timestamp(later) if later is not None else None,
        )


class AttemptList(Struct):
    data: list[AttemptBody]
    has_more: bool
    next: str | None


class ScheduledDelivery(Struct):
    id: str
    endpoint_id: str
    status: str


class RedeliveryBody(Struct):
    event_id: str
    deliveries: list[ScheduledDelivery]

    @classmethod
    def of(cls, redelivery: Redelivery) -> RedeliveryBody:
        scheduled = [
            ScheduledDelivery(d.id, d.endpoint_id, d.status.value) for d in redelivery.deliveries
        ]
        return cls(redelivery.event_id, scheduled)


def next_link(
    path: str,
    page: Page[Any],
    limit: str | None,
    filters: Sequence[tuple[str, str | None]] = (),
) -> str | None:
    """The next page's link with the same filters and `limit`, or None on the last page."""
    if not page.has_more or not page.data:
        return None
    size = str(int(limit)) if limit else str(DEFAULT_PAGE)
    params = [("starting_after", page.data[-1].id), ("limit", size)]
    params += [(name, value) for name, value in filters if value is not None]
    return f"{path}?" + urlencode(params, quote_via=quote)
