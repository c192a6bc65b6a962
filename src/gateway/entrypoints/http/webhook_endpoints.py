"""/webhook-endpoints: where a merchant's events go, their secrets and their delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, QueryParameter

from gateway.application.authentication import Principal
from gateway.application.mediator import Mediator
from gateway.application.queries import MAX_PAGE
from gateway.application.webhook_queries import (
    GetWebhookEndpoint,
    ListDeliveryAttempts,
    ListWebhookEndpoints,
)
from gateway.domain.commands import (
    CreateWebhookEndpoint,
    CreateWebhookEndpointError,
    DeleteWebhookEndpoint,
    RotateWebhookSecret,
)
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.result import Err, Ok
from gateway.domain.webhook_url import UrlInvalid, UrlNotAllowed
from gateway.domain.webhooks import EventType
from gateway.entrypoints.http import problems
from gateway.entrypoints.http.json_body import decode_json_body
from gateway.entrypoints.http.openapi import COMMON_CODES, parameter_schema, problem_responses
from gateway.entrypoints.http.webhook_schemas import (
    AttemptBody,
    AttemptList,
    EndpointBody,
    EndpointList,
    EndpointWithSecret,
    next_link,
)


def _cursor(prefix: str) -> dict[str, Any]:
    """What `parse_cursor` accepts: `<prefix>_…`, at most 64 characters."""
    rest = 64 - len(prefix) - 1
    return parameter_schema(OpenAPIType.STRING, pattern=f"^{prefix}_[^\\x00]{{0,{rest}}}$")


Limit = Annotated[
    str | None,
    QueryParameter(
        description="1-100, default 20",
        schema_extra=parameter_schema(OpenAPIType.INTEGER, minimum=1, maximum=MAX_PAGE),
    ),
]
EndpointAfter = Annotated[
    str | None,
    QueryParameter(description="An endpoint id: the page after it", schema_extra=_cursor("we")),
]
AttemptAfter = Annotated[
    str | None,
    QueryParameter(description="An attempt id: the page after it", schema_extra=_cursor("wha")),
]
EventAfter = Annotated[
    str | None,
    QueryParameter(description="An event id: the page after it", schema_extra=_cursor("evt")),
]
READ_CODES = (*COMMON_CODES, "validation_error", "not_found")

_ENDPOINT_REQUEST = Schema(
    type=OpenAPIType.OBJECT,
    required=["url"],
    properties={
        "url": Schema(
            type=OpenAPIType.STRING,
            description="An absolute https URL resolving to public addresses only: anything"
            " that is not an absolute http(s) URL (whatever its JSON type) is 422 url_invalid;"
            " http or an internal address is 422 url_not_allowed",
        ),
        "events": Schema(
            type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
            items=Schema(type=OpenAPIType.STRING, enum=list(EventType)),
            min_items=1,
            description="Optional: every event type when left out (or null)",
        ),
    },
)


@dataclass
class CreateEndpointOperation(Operation):
    """The body is read raw (the application validates it); this documents its shape."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=_ENDPOINT_REQUEST)},
            required=True,
        )


def decode_json(raw: bytes) -> object:
    return decode_json_body(raw)  # strict: no duplicate keys, UTF-8 only (json_body.py)


def webhook_problem(
    error: CreateWebhookEndpointError | NotFound | ValidationFailed,
) -> problems.ApiProblem:
    match error:
        case UrlInvalid(message):
            return problems.ApiProblem("url_invalid", f"url {message}")
        case UrlNotAllowed(message):
            return problems.ApiProblem("url_not_allowed", f"url not allowed: {message}")
        case ValidationFailed() | NotFound():
            return problems.from_error(error)


class WebhookEndpointController(Controller):
    path = "/webhook-endpoints"
    tags = ("webhooks",)

    @post(
        operation_id="createWebhookEndpoint",
        summary="Register an endpoint; its signing secret is shown only in this answer",
        status_code=201,
        operation_class=CreateEndpointOperation,
        responses=problem_responses(
            *COMMON_CODES,
            "validation_error",
            "malformed_json",
            "payload_too_large",
            "url_invalid",
            "url_not_allowed",
        ),
    )
    async def create_endpoint(
        self,
        request: Request[Any, Any, Any],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> EndpointWithSecret:
        body = decode_json(await request.body())
        match await mediator.send(CreateWebhookEndpoint(principal.merchant_id, body)):
            case Ok(issued):
                return EndpointWithSecret.of_issued(issued)
            case Err(error):
                raise webhook_problem(error)

    @get(
        operation_id="listWebhookEndpoints",
        summary="List endpoints, newest first (never their secrets)",
        responses=problem_responses(*COMMON_CODES, "validation_error"),
    )
    async def list_endpoints(
        self,
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
        limit: Limit = None,
        starting_after: EndpointAfter = None,
    ) -> EndpointList:
        query = ListWebhookEndpoints(principal.merchant_id, limit, starting_after)
        match await mediator.ask(query):
            case Ok(page):
                data = [EndpointBody.of_view(view) for view in page.data]
                return EndpointList(data, page.has_more, next_link(self.path, page, limit))
            case Err(error):
                raise webhook_problem(error)

    @get(
        "/{endpoint_id:str}",
        operation_id="getWebhookEndpoint",
        summary="Read an endpoint",
        responses=problem_responses(*READ_CODES),
    )
    async def get_endpoint(
        self,
        endpoint_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> EndpointBody:
        match await mediator.ask(GetWebhookEndpoint(principal.merchant_id, endpoint_id)):
            case Ok(view):
                return EndpointBody.of_view(view)
            case Err(error):
                raise webhook_problem(error)

    @delete(
        "/{endpoint_id:str}",
        operation_id="deleteWebhookEndpoint",
        summary="Delete an endpoint: it receives nothing more",
        status_code=204,
        responses=problem_responses(*READ_CODES),
    )
    async def delete_endpoint(
        self,
        endpoint_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> None:
        match await mediator.send(DeleteWebhookEndpoint(principal.merchant_id, endpoint_id)):
            case Ok():
                return
            case Err(error):
                raise webhook_problem(error)

    @post(
        "/{endpoint_id:str}/rotate-secret",
        operation_id="rotateWebhookSecret",
        summary="A new secret; the previous one keeps signing alongside it for 24 h",
        status_code=200,
        responses=problem_responses(*READ_CODES),
    )
    async def rotate_secret(
        self,
        endpoint_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> EndpointWithSecret:
        match await mediator.send(RotateWebhookSecret(principal.merchant_id, endpoint_id)):
            case Ok(issued):
                return EndpointWithSecret.of_issued(issued)
            case Err(error):
                raise webhook_problem(error)

    @get(
        "/{endpoint_id:str}/deliveries",
        operation_id="listWebhookDeliveries",
        summary="Every delivery attempt to this endpoint, newest first",
        responses=problem_responses(*READ_CODES),
    )
    async def list_deliveries(
        self,
        endpoint_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
        limit: Limit = None,
        starting_after: AttemptAfter = None,
    ) -> AttemptList:
        query = ListDeliveryAttempts(principal.merchant_id, endpoint_id, limit, starting_after)
        match await mediator.ask(query):
            case Ok(page):
                data = [AttemptBody.of_view(view) for view in page.data]
                link = next_link(f"{self.path}/{endpoint_id}/deliveries", page, limit)
                return AttemptList(data, page.has_more, link)
            case Err(error):
                raise webhook_problem(error)
