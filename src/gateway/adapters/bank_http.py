"""The `Bank` port over HTTP.

Speaks the wire protocol of the Checkout.com challenge bank simulator plus two extensions:
the `Idempotency-Key` header and the status lookup `GET /payments/{key}`. Retries 5xx,
timeouts and broken connections with exponential backoff and full jitter; after a call
whose answer was lost it asks the lookup before posting again. Card data is only ever in
the request body: never in a log line, an outcome or an exception message.

The requests go through a `BankWire`: aiohttp to a bank over the network (`network_wire`;
measured at a fifth of httpx's CPU per call, which mattered: the worker makes one call per
payment), and httpx to the simulator served in this process (`in_process_wire`).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, Self, cast
from urllib.parse import quote

import aiohttp
import httpx
import msgspec
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


class Unreachable(Exception):
    """The connection could not be made: the bank saw nothing."""


class Broken(Exception):
    """The connection broke after the request was sent: the bank may have acted on it."""


class BankWire(Protocol):
    async def send(
        self, method: str, path: str, *, body: Any, key: str, timeout_s: float
    ) -> tuple[int, bytes]:
        """The status and body of the answer. Raises `Unreachable`, `Broken`, or
        `TimeoutError` when no answer came within `timeout_s`."""
        ...

    async def aclose(self) -> None: ...


class HttpBank:
    def __init__(
        self,
        client: BankWire,
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
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                status, content = await self._client.send(
                    method, path, body=body, key=key, timeout_s=timeout
                )
            answer = _read(status, content, lookup=method == "GET")
        except Unreachable:
            answer = _Retry("connection_error", "the bank could not be reached")
        except TimeoutError:
            answer = _Retry("timeout", f"the bank did not answer within {timeout:.3g}s", lost=True)
        except Broken as exc:
            answer = _Retry("connection_error", f"the connection broke ({exc})", lost=True)
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


def _read(status: int, content: bytes, *, lookup: bool) -> _Answer:
    if status == 200:
        return _decision(_json(content))
    if status == 202:
        return Pending()
    if lookup and status == 404:
        return Unknown()
    if not lookup and 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return Rejected(_error_message(status, _json(content)))
    if status >= 500:
        return _Retry("server_error", f"the bank answered HTTP {status}")
    return _Retry("unexpected_status", f"the bank answered HTTP {status}")


def _decision(body: dict[str, Any]) -> _Answer:
    authorized = body.get("authorized")
    code = body.get("authorization_code")
    if authorized is True and isinstance(code, str) and code:
        return Authorized(code[:64])
    if authorized is False:
        decline = body.get("decline_code")
        return Declined(decline[:64] if isinstance(decline, str) and decline else "card_declined")
    return _Retry("malformed", "the bank answered 200 with a body of the wrong shape")


def _error_message(status: int, body: dict[str, Any]) -> str:
    message = body.get("error_message")
    if not isinstance(message, str) or not message:
        return f"the bank rejected the request (HTTP {status})"
    return _DIGITS.sub("[redacted]", message[:500])  # never echo anything that looks like a PAN


def _json(content: bytes) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(content)
    except ValueError:  # msgspec.DecodeError included
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
    """An httpx client for an ASGI bank in this process (the embedded bank simulator)."""
    return httpx.AsyncClient(transport=_InProcessTransport(app), base_url="http://bank-simulator")


def in_process_wire(app: ASGIApp) -> HttpxWire:
    return HttpxWire(in_process_client(app))


class HttpxWire:
    """A `BankWire` over an httpx client."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(
        self, method: str, path: str, *, body: Any, key: str, timeout_s: float
    ) -> tuple[int, bytes]:
        headers = {"Idempotency-Key": key} if key else None
        try:
            response = await self._client.request(
                method, path, json=body, headers=headers, timeout=timeout_s
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unreachable from exc
        except httpx.TimeoutException as exc:
            raise TimeoutError from exc
        except httpx.TransportError as exc:
            raise Broken(type(exc).__name__) from exc
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def network_wire(base_url: str, timeout_s: float) -> AiohttpWire:
    return AiohttpWire(base_url, timeout_s)


class AiohttpWire:
    """A `BankWire` to a bank over the network: one aiohttp session (opened at the first
    call, in the running loop) with up to `connections` keep-alive connections. Connecting
    is quick or not at all: a bank that does not accept the connection within 2 s is
    retried (on another connection) rather than waited for."""

    def __init__(self, base_url: str, timeout_s: float, *, connections: int = 512) -> None:
        self._base_url = base_url.rstrip("/")
        self._connect_s = min(CONNECT_TIMEOUT_S, timeout_s)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, limit_per_host=0),
            )
        return self._session

    async def send(
        self, method: str, path: str, *, body: Any, key: str, timeout_s: float
    ) -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self._connect_s)
        headers = {"Idempotency-Key": key} if key else {}
        data = None
        if body is not None:  # encoded here: aiohttp's `json=` costs twice as much
            data = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        try:
            async with self._open().request(
                method,
                self._base_url + path,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
            raise Unreachable from exc
        except TimeoutError:
            raise
        except aiohttp.ClientError as exc:
            raise Broken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


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
