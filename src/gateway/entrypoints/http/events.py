"""/events: the merchant's audit trail of payment events, and sending one again."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIType
from litestar.params import FromPath, QueryParameter

from gateway.application.authentication import Principal
from gateway.application.mediator import Mediator
from gateway.application.webhook_queries import GetEvent, ListEvents
from gateway.domain.commands import RedeliverEvent
from gateway.domain.result import Err, Ok
from gateway.domain.webhooks import EventType
from gateway.entrypoints.http import problems
from gateway.entrypoints.http.openapi import COMMON_CODES, parameter_schema, problem_responses
from gateway.entrypoints.http.webhook_endpoints import READ_CODES, EventAfter, Limit
from gateway.entrypoints.http.webhook_schemas import (
    EventBody,
    EventList,
    RedeliveryBody,
    next_link,
)

_PAYMENT_ID = parameter_schema(
    OpenAPIType.STRING, min_length=1, max_length=64, pattern="^[^\\x00]+$"
)


class EventController(Controller):
    path = "/events"
    tags = ("webhooks",)

    @get(
        operation_id="listEvents",
        summary="List events, newest first",
        responses=problem_responses(*COMMON_CODES, "validation_error"),
    )
    async def list_events(
        self,
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
        limit: Limit = None,
        starting_after: EventAfter = None,
        type_: Annotated[
            str | None,
            QueryParameter(
                name="type",
                description="payment.authorized, payment.declined or payment.failed",
                schema_extra=parameter_schema(OpenAPIType.STRING, enum=list(EventType)),
            ),
        ] = None,
        payment_id: Annotated[
            str | None, QueryParameter(description="A payment id", schema_extra=_PAYMENT_ID)
        ] = None,
    ) -> EventList:
        query = ListEvents(principal.merchant_id, limit, starting_after, type_, payment_id)
        match await mediator.ask(query):
            case Ok(page):
                data = [EventBody.of_view(view) for view in page.data]
                filters = [("type", type_), ("payment_id", payment_id)]
                return EventList(data, page.has_more, next_link(self.path, page, limit, filters))
            case Err(error):
                raise problems.from_error(error)

    @get(
        "/{event_id:str}",
        operation_id="getEvent",
        summary="Read an event",
        responses=problem_responses(*READ_CODES),
    )
    async def get_event(
        self,
        event_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> EventBody:
        match await mediator.ask(GetEvent(principal.merchant_id, event_id)):
            case Ok(view):
                return EventBody.of_view(view)
            case Err(error):
                raise problems.from_error(error)

    @post(
        "/{event_id:str}/redeliver",
        operation_id="redeliverEvent",
        summary="Send an event again, now, to every endpoint subscribed to its type",
        status_code=202,
        responses=problem_responses(*READ_CODES),
    )
    async def redeliver(
        self,
        event_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> Response[RedeliveryBody]:
        match await mediator.send(RedeliverEvent(principal.merchant_id, event_id)):
            case Ok(redelivery):
                return Response(RedeliveryBody.of(redelivery), status_code=202)
            case Err(error):
                raise problems.from_error(error)
