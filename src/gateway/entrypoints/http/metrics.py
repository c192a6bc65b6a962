"""HTTP metrics by route template and status, and the Prometheus scrape endpoint."""

from __future__ import annotations

from functools import lru_cache

from litestar import get
from litestar.response import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "gateway_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "gateway_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# `labels()` validates and locks on every call: a child is looked up once per label set.
# Methods are folded into a fixed set and routes are templates, so the sets are few.
_requests = lru_cache(maxsize=1024)(HTTP_REQUESTS.labels)
_seconds = lru_cache(maxsize=1024)(HTTP_SECONDS.labels)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """`route` is the template (`/payments/{payment_id:str}`), never the raw path."""
    method = method if method in _METHODS else "OTHER"
    _requests(method, route, str(status)).inc()
    _seconds(method, route).observe(seconds)


@get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics",
    tags=["operations"],
    media_type=CONTENT_TYPE_LATEST,
    sync_to_thread=False,
)
def scrape_metrics() -> Response[bytes]:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
