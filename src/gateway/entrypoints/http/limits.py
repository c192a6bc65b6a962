"""The rate limits as HTTP answers: `429 rate_limited` with `Retry-After` in whole seconds."""

from __future__ import annotations

import math

from litestar.types import Scope

from gateway.application.rate_limit import RequestLimits
from gateway.entrypoints.http.forwarded import client_host
from gateway.entrypoints.http.problems import ApiProblem


def rate_limited(wait_s: float, why: str) -> ApiProblem:
    seconds = max(1, math.ceil(wait_s))
    detail = f"{why}; retry after {seconds} second{'s' if seconds != 1 else ''}"
    return ApiProblem("rate_limited", detail, headers={"Retry-After": str(seconds)})


def refuse_blocked_address(limits: RequestLimits, scope: Scope) -> None:
    """A failing key from an address that failed too often: 429 instead of 401."""
    wait_s = limits.address_blocked(client_host(scope))
    if wait_s > 0:
        raise rate_limited(wait_s, "too many failed authentication attempts from this address")


def count_failure(limits: RequestLimits, scope: Scope) -> None:
    limits.authentication_failed(client_host(scope))


def refuse_busy_merchant(limits: RequestLimits, merchant_id: str) -> None:
    wait_s = limits.merchant_request(merchant_id)
    if wait_s > 0:
        raise rate_limited(wait_s, "too many requests for this merchant")
