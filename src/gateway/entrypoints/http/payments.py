"""/payments: request a payment (idempotent), read one, list them."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIType
from litestar.params import FromPath, HeaderParameter, QueryParameter

from gateway.application.authentication import Principal
from gateway.application.mediator import Mediator
from gateway.application.queries import (
    DEFAULT_PAGE,
    MAX_PAGE,
    GetPayment,
    ListPayments,
    PaymentPage,
)
from gateway.domain.commands import PaymentAccepted, RequestPayment
from gateway.domain.model import PaymentStatus
from gateway.domain.result import Err, Ok
from gateway.entrypoints.http import problems
from gateway.entrypoints.http.json_body import decode_json_body
from gateway.entrypoints.http.openapi import (
    COMMON_CODES,
    RequestPaymentOperation,
    parameter_schema,
    problem_responses,
)
from gateway.entrypoints.http.schemas import JobBody, PaymentBody, PaymentList

IdempotencyKeyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="Required: 1-255 printable ASCII characters, unique per payment.",
        schema_extra=parameter_schema(
            OpenAPIType.STRING, min_length=1, max_length=255, pattern="^[ -~]+$"
        ),
    ),
]

_LIMIT = parameter_schema(OpenAPIType.INTEGER, minimum=1, maximum=MAX_PAGE)
_CURSOR = parameter_schema(OpenAPIType.STRING, pattern="^pay_[ -~]{1,60}$")
_STATUS = parameter_schema(OpenAPIType.STRING, enum=[status.value for status in PaymentStatus])
_REFERENCE = parameter_schema(OpenAPIType.STRING, max_length=50, pattern="^[^\\x00]*$")


class PaymentController(Controller):
    path = "/payments"
    tags = ("payments",)

    @post(
        operation_id="requestPayment",
        summary="Request a payment",
        status_code=202,
        operation_class=RequestPaymentOperation,
        responses=problem_responses(
            *COMMON_CODES,
            "validation_error",
            "malformed_json",
            "idempotency_key_missing",
            "idempotency_key_invalid",
            "idempotency_key_in_progress",
            "payload_too_large",
            "idempotency_key_reused",
        ),
        response_description="Accepted: the job that processes the payment (see Location)",
        response_headers=[
            ResponseHeader(name="Location", description="/jobs/{job_id}", documentation_only=True),
            ResponseHeader(
                name="Idempotent-Replayed",
                description="`true` when this answers an earlier request with the same key",
                documentation_only=True,
                required=False,
            ),
        ],
    )
    async def request_payment(
        self,
        request: Request[Any, Any, Any],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[JobBody]:
        if idempotency_key is None:
            detail = "send an Idempotency-Key header, unique per payment"
            raise problems.ApiProblem("idempotency_key_missing", detail)
        body = decode_json_body(await request.body())
        command = RequestPayment(principal.merchant_id, idempotency_key, body)
        match await mediator.send(command):
            case Ok(accepted):
                return _accepted(accepted)
            case Err(error):
                raise problems.from_error(error)

    @get(
        "/{payment_id:str}",
        operation_id="getPayment",
        summary="Read a payment",
        responses=problem_responses(*COMMON_CODES, "validation_error", "not_found"),
    )
    async def get_payment(
        self,
        payment_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> PaymentBody:
        match await mediator.ask(GetPayment(principal.merchant_id, payment_id)):
            case Ok(view):
                return PaymentBody.of_view(view)
            case Err(error):
                raise problems.from_error(error)

    @get(
        operation_id="listPayments",
        summary="List payments, newest first",
        responses=problem_responses(*COMMON_CODES, "validation_error"),
    )
    async def list_payments(
        self,
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
        limit: Annotated[
            str | None, QueryParameter(description="1-100, default 20", schema_extra=_LIMIT)
        ] = None,
        starting_after: Annotated[
            str | None,
            QueryParameter(description="A payment id: the page after it", schema_extra=_CURSOR),
        ] = None,
        status: Annotated[
            str | None,
            QueryParameter(
                description="pending, authorized, declined or failed", schema_extra=_STATUS
            ),
        ] = None,
        reference: Annotated[
            str | None, QueryParameter(description="Your reference", schema_extra=_REFERENCE)
        ] = None,
    ) -> PaymentList:
        query = ListPayments(principal.merchant_id, limit, starting_after, status, reference)
        match await mediator.ask(query):
            case Ok(page):
                data = [PaymentBody.of_view(view) for view in page.data]
                return PaymentList(data, page.has_more, _next_link(query, page))
            case Err(error):
                raise problems.from_error(error)


def _accepted(accepted: PaymentAccepted) -> Response[JobBody]:
    headers = {"Location": f"/jobs/{accepted.job.id}"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(JobBody.of_job(accepted.job), status_code=202, headers=headers)


def _next_link(query: ListPayments, page: PaymentPage) -> str | None:
    if not page.has_more or not page.data:
        return None
    limit = int(query.limit) if query.limit is not None else DEFAULT_PAGE
    params = [("starting_after", page.data[-1].id), ("limit", str(limit))]
    if query.status is not None:
        params.append(("status", query.status))
    if query.reference is not None:
        params.append(("reference", query.reference))
    return "/payments?" + urlencode(params, quote_via=quote)
