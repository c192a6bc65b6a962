"""The outermost ASGI layer: request id, one access log line and HTTP metrics per request.

It wraps Litestar's own exception handling, so it sees every response, including the
404 and 405 answers the router gives before any route middleware would run.
"""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from gateway.entrypoints.http import metrics
from gateway.entrypoints.http.forwarded import client_host
from gateway.entrypoints.logging import bind_context, clear_context, looks_like_card_number

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_NAME = REQUEST_ID_HEADER.lower().encode("ascii")
_STATE_REQUEST_ID = "request_id"
_STATE_MERCHANT_ID = "merchant_id"
_MAX_REQUEST_ID = 200

_log = structlog.get_logger("gateway.http")


def _valid_request_id(raw: bytes) -> bool:
    return 1 <= len(raw) <= _MAX_REQUEST_ID and all(0x20 <= byte <= 0x7E for byte in raw)


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _valid_request_id(value):
            return value.decode("ascii")
    return new_request_id()


def new_request_id() -> str:
    """`req_` and 24 random hex digits, drawn again when twelve or more of them in a row
    are decimal digits (about 3 % of draws): the logs would mask that run as a card
    number, and the id in the log lines would not match the one the client got."""
    while True:
        request_id = f"req_{os.urandom(12).hex()}"
        if not looks_like_card_number(request_id):
            return request_id


def request_id_of(scope: Scope) -> str:
    """The id of the request in `scope`: the client's own when valid, else a fresh one."""
    state: dict[str, Any] = scope.setdefault("state", {})
    request_id = state.get(_STATE_REQUEST_ID)
    if not isinstance(request_id, str):
        request_id = state[_STATE_REQUEST_ID] = _incoming_request_id(scope)
    return request_id


def set_merchant(scope: Scope, merchant_id: str) -> None:
    """Records who is calling, for the access log line; binds it for every other line."""
    scope.setdefault("state", {})[_STATE_MERCHANT_ID] = merchant_id
    bind_context(merchant_id=merchant_id)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        clear_context()
        bind_context(request_id=request_id)
        started = time.perf_counter()
        status = 500
        # Nothing else writes this header: appended, without a search for an earlier one.
        header = (_REQUEST_ID_NAME, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    @staticmethod
    def _record(scope: HTTPScope, status: int, seconds: float) -> None:
        route = scope.get("path_template") or "unmatched"
        metrics.observe_request(scope["method"], route, status, seconds)
        _log.info(
            "http_request",
            method=scope["method"],
            path=scope["path"],
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            request_id=request_id_of(scope),
            merchant_id=scope.get("state", {}).get(_STATE_MERCHANT_ID),
            client=client_host(scope),
        )
