"""The OpenAPI document: docs at /docs, every status a route can answer, the bearer scheme."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Response, Router
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

from gateway.domain.money import SUPPORTED_CURRENCIES
from gateway.entrypoints.http.auth import SECURITY_SCHEME, SECURITY_SCHEME_NAME
from gateway.entrypoints.http.problems import PROBLEM_JSON, TITLES
from gateway.entrypoints.http.schemas import Problem

COMMON_CODES = ("authentication_required", "rate_limited", "service_unavailable", "internal_error")


def problem_responses(*codes: str) -> dict[int, ResponseSpec]:
    """A problem+json response per status, naming the codes the route can answer with."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(TITLES[code][0], []).append(code)
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            generate_examples=False,
            description="Problem details; code: " + ", ".join(names),
        )
        for status, names in sorted(by_status.items())
    }


def parameter_schema(openapi_type: OpenAPIType, **constraints: Any) -> dict[str, Any]:
    """`schema_extra` for a parameter read as raw text (`str | None`): documents what the
    gateway accepts instead of `oneOf [string, null]`; the gateway still validates the text
    itself, with its own error codes."""
    return {"one_of": None, "type": openapi_type, **constraints}


def _string(description: str, **kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **kwargs)


def _integer(description: str, **kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.INTEGER, description=description, **kwargs)


def _optional(schema: Schema) -> Schema:
    """`null` is the same as leaving the field out."""
    assert isinstance(schema.type, OpenAPIType)
    schema.type = [schema.type, OpenAPIType.NULL]
    return schema


# The request schemas admit everything the gateway accepts and say what they can: what no
# JSON Schema can say (Luhn, expiry after today, the CVV length of the scheme, printable
# text) is checked by the gateway, which answers `400` naming each field.
_CARD = Schema(
    type=OpenAPIType.OBJECT,
    required=["number", "expiry_month", "expiry_year", "cvv"],
    properties={
        "number": _string("12-19 digits, Luhn-valid", pattern="^[0-9]{12,19}$"),
        "expiry_month": _integer("1-12", minimum=1, maximum=12),
        "expiry_year": _integer("Four digits; not in the past", minimum=1000, maximum=9999),
        "cvv": _string("4 digits for American Express, 3 otherwise", pattern="^[0-9]{3,4}$"),
        "holder_name": _optional(_string("Printable text", max_length=100)),
    },
)
PAYMENT_REQUEST = Schema(
    type=OpenAPIType.OBJECT,
    required=["amount", "currency", "card"],
    description="Every invalid field is reported at once; unknown fields are ignored.",
    properties={
        "amount": _integer("Minor units of the currency", minimum=1, maximum=99_999_999_999),
        "currency": _string(
            "ISO 4217 alpha-3, upper case", enum=sorted(SUPPORTED_CURRENCIES), pattern="^[A-Z]{3}$"
        ),
        "card": _CARD,
        "reference": _optional(_string("Your own reference", min_length=1, max_length=50)),
        "metadata": _optional(
            Schema(
                type=OpenAPIType.OBJECT,
                description="At most 20 keys of 1-40 characters; string values of at most 500",
                max_properties=20,
                property_names=_string("", min_length=1, max_length=40),
                additional_properties=_string("", max_length=500),
            )
        ),
    },
)


@dataclass
class RequestPaymentOperation(Operation):
    """The body is read raw (the domain validates it); this documents its shape."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=PAYMENT_REQUEST)},
            required=True,
            description="Parsed as JSON whatever the Content-Type; at most 64 KiB by default.",
        )
        for parameter in self.parameters or []:
            if getattr(parameter, "name", None) == "Idempotency-Key":
                parameter.required = True  # type: ignore[union-attr]


def _docs_not_found(response: Response[Any]) -> Response[Any]:
    """Unknown paths under /docs answer problem+json like everywhere else, not HTML."""
    if response.status_code == 404:
        raise NotFoundException
    return response


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Payment gateway",
        version="1.0.0",
        description="Accept card payments at once; the bank is asked asynchronously.",
        path="/docs",
        render_plugins=[SwaggerRenderPlugin(path="/")],
        openapi_router=Router(
            "/docs", route_handlers=[], include_in_schema=False, after_request=_docs_not_found
        ),
        components=Components(security_schemes={SECURITY_SCHEME_NAME: SECURITY_SCHEME}),
    )
