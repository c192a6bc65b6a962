"""`Authorization: Bearer <api key>` → the calling merchant, as a Litestar dependency.

The merchant is derived from the key alone, never from the request. Any failure —
missing, malformed, unknown or revoked — is the same `401 authentication_required`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import SecurityRequirement, SecurityScheme

from gateway.application.authentication import ApiKeyAuthenticator, Principal
from gateway.application.rate_limit import RequestLimits
from gateway.domain.result import Err, Ok
from gateway.entrypoints.http import limits as http_limits
from gateway.entrypoints.http.middleware import set_merchant
from gateway.entrypoints.http.problems import unauthenticated

SECURITY_SCHEME_NAME = "apiKey"
SECURITY_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    description="An API key such as `sk_test_…`, sent as `Authorization: Bearer <key>`.",
)
SECURITY: list[SecurityRequirement] = [{SECURITY_SCHEME_NAME: []}]


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def principal_provider(
    authenticator: ApiKeyAuthenticator, limits: RequestLimits | None = None
) -> Provide:
    """A dependency named `principal`: the authenticated caller, or a 401 problem; with
    `limits`, a 429 for a failing key from an address that failed too often, or for a
    merchant over its rate."""
    checked = limits or RequestLimits()

    # `mediator` is not used: naming it makes Litestar resolve the mediator first and
    # this second, in sequence. Two independent dependencies would be resolved in an
    # anyio task group on every request, which costs more than both of them.
    async def principal(
        request: Request[Any, Any, Any], mediator: NamedDependency[object]
    ) -> Principal:
        del mediator
        found = await _authenticate(authenticator, request)
        if found is None:
            # Guessing is what is limited: an address that failed too often gets 429 for
            # every failing key. A valid key still passes, so that clients sharing an
            # address (a NAT, a proxy not in GATEWAY_TRUSTED_PROXIES) cannot lock each
            # other out; with 238 random bits a key cannot be guessed and confirmed.
            http_limits.refuse_blocked_address(checked, request.scope)
            http_limits.count_failure(checked, request.scope)
            raise unauthenticated()
        set_merchant(request.scope, found.merchant_id)
        http_limits.refuse_busy_merchant(checked, found.merchant_id)
        return found

    return Provide(principal)


async def _authenticate(
    authenticator: ApiKeyAuthenticator, request: Request[Any, Any, Any]
) -> Principal | None:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    match await authenticator.authenticate(token):
        case Ok(found):
            return found
        case Err():
            return None
