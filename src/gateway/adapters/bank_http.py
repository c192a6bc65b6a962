"""The `Bank` port over HTTP.

Speaks the wire protocol of the Checkout.com challenge bank simulator plus two extensions:
the `Idempotency-Key` header and the status lookup `GET /payments/{key}`. Retries 5xx,
timeouts and broken connections with exponential backoff and full jitter; after a call
whose answer was lost it asks the lookup before posting again. Card data is only ever in
the request body: never in a log line, an outcome or an exception message.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import httpx
import structlog
from litestar.types import ASGIApp

from gateway.application.bank import (
    Authorized,
    BankOutcome,
    BankRequest,
    Declined,
    Pending,
    Rejected,
    Unavailable,
    Unknown,
)

_log = structlog.get_logger(__name__)
Observe = Callable[[str, float], None]
CONNECT_TIMEOUT_S = 2.0
_MAX_BACKOFF_S = 10.0
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
_DIGITS = re.compile(r"[0-9]{12,19}")


@dataclass(frozen=True, slots=True)
class _Retry:
    """A transient failure. `lost`: the bank may have acted on it, so ask before retrying."""

    label: str
    reason: str
    lost: bool = False


_Answer = BankOutcome | _Retry


class HttpBank:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout_s: float = 5.0,
        attempts: int = 5,
        backoff_s: float = 0.2,
        deadline_s: float = 25.0,
        observe: Observe | None = None,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._deadline_s = deadline_s
        self._observe = observe

    async def authorize(self, request: BankRequest) -> BankOutcome:
        body = _payload(request)
        key = request.idempotency_key

        async def once(deadline: float) -> _Answer:
            answer = await self._call("POST", "/payments", deadline, key=key, body=body)
            if isinstance(answer, _Retry) and answer.lost:
                found = await self._call("GET", _status_path(key), deadline)
                if isinstance(found, Authorized | Declined | Pending):
                    return found
            return answer

        return await self._retrying(once, key)

    async def lookup(self, idempotency_key: str) -> BankOutcome:
        path = _status_path(idempotency_key)
        return await self._retrying(
            lambda deadline: self._call("GET", path, deadline), idempotency_key
        )

    async def _retrying(self, once: Callable[[float], Awaitable[_Answer]], key: str) -> BankOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        reason, made = "the deadline passed before any attempt", 0
        for attempt in range(self._attempts):
            if attempt:
                pause = self._pause(attempt)
                if loop.time() + pause >= deadline:
                    break
                await asyncio.sleep(pause)
            answer = await once(deadline)
            made += 1
            if not isinstance(answer, _Retry):
                return answer
            reason = answer.reason
            _log.warning("bank_call_failed", idempotency_key=key, attempt=made, reason=reason)
        return Unavailable(f"the bank did not answer after {made} attempts: {reason}")

    def _pause(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        ceiling = min(_MAX_BACKOFF_S, self._backoff_s * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret

    async def _call(
        self, method: str, path: str, deadline: float, *, key: str = "", body: Any = None
    ) -> _Answer:
        timeout = min(self._timeout_s, deadline - asyncio.get_running_loop().time())
        if timeout <= 0:
            return _Retry("timeout", "the deadline passed")
        headers = {"Idempotency-Key": key} if key else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.request(
                    method, path, json=body, headers=headers, timeout=timeout
                )
            answer = _read(response, lookup=method == "GET")
        except (httpx.ConnectError, httpx.ConnectTimeout):
            answer = _Retry("connection_error", "the bank could not be reached")
        except (TimeoutError, httpx.TimeoutException):
            answer = _Retry("timeout", f"the bank did not answer within {timeout:.3g}s", lost=True)
        except httpx.TransportError as exc:
            answer = _Retry(
                "connection_error", f"the connection broke ({type(exc).__name__})", True
            )
        if self._observe is not None:
            self._observe(_label(answer), time.perf_counter() - started)
        return answer


def _payload(request: BankRequest) -> dict[str, Any]:
    return {
        "card_number": request.card_number,
        "expiry_date": f"{request.expiry_month:02d}/{request.expiry_year:04d}",
        "currency": request.currency,
        "amount": request.amount,
        "cvv": request.cvv,
    }


def _status_path(key: str) -> str:
    return "/payments/" + quote(key, safe="")


def _read(response: httpx.Response, *, lookup: bool) -> _Answer:
    status = response.status_code
    if status == 200:
        return _decision(response)
    if status == 202:
        return Pending()
    if lookup and status == 404:
        return Unknown()
    if not lookup and 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return Rejected(_error_message(response))
    if status >= 500:
        return _Retry("server_error", f"the bank answered HTTP {status}")
    return _Retry("unexpected_status", f"the bank answered HTTP {status}")


def _decision(response: httpx.Response) -> _Answer:
    body = _json(response)
    authorized = body.get("authorized")
    code = body.get("authorization_code")
    if authorized is True and isinstance(code, str) and code:
        return Authorized(code[:64])
    if authorized is False:
        decline = body.get("decline_code")
        return Declined(decline[:64] if isinstance(decline, str) and decline else "card_declined")
    return _Retry("malformed", "the bank answered 200 with a body of the wrong shape")


def _error_message(response: httpx.Response) -> str:
    message = _json(response).get("error_message")
    if not isinstance(message, str) or not message:
        return f"the bank rejected the request (HTTP {response.status_code})"
    return _DIGITS.sub("[redacted]", message[:500])  # never echo anything that looks like a PAN


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _label(answer: _Answer) -> str:
    match answer:
        case _Retry(label):
            return label
        case Authorized():
            return "authorized"
        case Declined():
            return "declined"
        case Pending():
            return "pending"
        case Rejected():
            return "rejected"
        case Unknown():
            return "unknown"
        case Unavailable():
            return "unavailable"


def in_process_client(app: ASGIApp) -> httpx.AsyncClient:
    """A client for an ASGI bank in this process (the embedded bank simulator)."""
    return httpx.AsyncClient(transport=_InProcessTransport(app), base_url="http://bank-simulator")


def http_client(base_url: str, timeout_s: float) -> httpx.AsyncClient:
    """A pooled client for a bank over the network, sized for hundreds of concurrent calls."""
    return httpx.AsyncClient(
        base_url=base_url,
        # Connecting is quick or not at all: a bank that does not accept the connection
        # within 2 s is retried (on another connection) rather than waited for.
        timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
        transport=_ShardedTransport(shards=16, connections=32),
        follow_redirects=False,
    )


class _ShardedTransport(httpx.AsyncBaseTransport):
    """Several small connection pools taken in turn, instead of one large one.

    httpcore scans every connection of a pool for every waiting request, so one pool of
    hundreds of busy connections costs more CPU than the bank calls themselves (measured:
    1,000 calls 256 at a time took 3-5x the CPU and 2-4x the time through one pool of 512).
    """

    def __init__(self, *, shards: int, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
        self._turn = itertools.cycle(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        await asyncio.gather(*(shard.aclose() for shard in self._shards))


class _InProcessTransport(httpx.AsyncBaseTransport):
    """An ASGI transport on which an app failing mid-answer looks like a dropped connection."""

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=cast("Any", app))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx.HTTPError:
            raise
        except Exception as exc:
            raise httpx.RemoteProtocolError(
                "the bank dropped the connection", request=request
            ) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()
