"""/webhooks/bank: the bank's signed callbacks. No API key: the `Bank-Signature` is the proof."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import HeaderParameter
from msgspec import Struct

from gateway.application.mediator import Mediator
from gateway.domain.commands import BankCallbackError, ReceiveBankCallback
from gateway.domain.errors import PaymentAlreadyFinal, SignatureRejected
from gateway.domain.result import Err, Ok
from gateway.entrypoints.http import problems
from gateway.entrypoints.http.openapi import problem_responses

BankSignatureHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Bank-Signature",
        description='`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`; '
        "one `v1` per secret during a rotation. Required: without it the answer is 401.",
    ),
]


class BankCallbackReceipt(Struct):
    """`outcome`: `applied` (the payment is settled), `duplicate` (it already was, the
    same way) or `replayed` (this event id was received before; nothing done again)."""

    event_id: str
    payment_id: str
    outcome: str


def _text(description: str) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description)


_BANK_EVENT = Schema(
    type=OpenAPIType.OBJECT,
    required=["id", "type", "idempotency_key"],
    properties={
        "id": _text("The event id: the same id again is answered 200 without a second effect"),
        "type": Schema(type=OpenAPIType.STRING, enum=["payment.authorized", "payment.declined"]),
        "idempotency_key": _text("The payment id the gateway sent as Idempotency-Key"),
        "authorization_code": _text("Required for payment.authorized"),
        "decline_code": _text("For payment.declined; absent or null means card_declined"),
    },
)


@dataclass
class BankCallbackOperation(Operation):
    """The body is read raw (its signature covers the exact bytes); this documents it."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=_BANK_EVENT)}, required=True
        )


class BankWebhookController(Controller):
    path = "/webhooks/bank"
    tags = ("webhooks",)

    @post(
        operation_id="receiveBankCallback",
        summary="The bank's signed callback for a payment it answered 202 for",
        status_code=200,
        operation_class=BankCallbackOperation,
        responses=problem_responses(
            "validation_error",
            "signature_invalid",
            "not_found",
            "payment_already_final",
            "payload_too_large",
            "service_unavailable",
            "internal_error",
        ),
        response_description="Recorded and applied: the payment is settled",
    )
    async def receive(
        self,
        request: Request[Any, Any, Any],
        mediator: NamedDependency[Mediator],
        bank_signature: BankSignatureHeader = None,
    ) -> BankCallbackReceipt:
        command = ReceiveBankCallback(await request.body(), bank_signature)
        match await mediator.send(command):
            case Ok(accepted):
                return BankCallbackReceipt(accepted.event_id, accepted.payment_id, accepted.outcome)
            case Err(error):
                raise _problem(error)


def _problem(error: BankCallbackError) -> problems.ApiProblem:
    match error:
        case SignatureRejected(reason):
            return problems.ApiProblem("signature_invalid", f"Bank-Signature: {reason}")
        case PaymentAlreadyFinal(status):
            detail = f"the payment is already {status}; this event reports another outcome"
            return problems.ApiProblem("payment_already_final", detail)
        case _:
            return problems.from_error(error)
