"""Webhooks over HTTP: DNS resolution, and a sender that only connects to public addresses.

The check happens where the connection is made: the host is resolved, every address is
checked (unless internal addresses are allowed), and the socket is opened to a checked
address, so a name that resolves differently between check and connect cannot slip
through. TLS still verifies the certificate against the host name of the URL.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable, Mapping, Sequence

import httpcore
import httpx

from gateway.application.webhook_ports import SendResult
from gateway.domain.result import Err
from gateway.domain.webhook_url import address_allowed

TIMEOUT_S = 10.0
RESOLVE_TIMEOUT_S = 5.0


class DnsResolver:
    async def resolve(self, host: str, port: int) -> Sequence[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError):
            return []
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressNotAllowed(httpcore.ConnectError):
    """The host resolved to an internal address (or did not resolve)."""


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, resolver: DnsResolver, *, allow_internal: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver
        self._allow_internal = allow_internal

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolver.resolve(host, port)
        if not self._allow_internal and isinstance(address_allowed(addresses), Err):
            raise AddressNotAllowed(f"{host} does not resolve to public addresses only")
        last: Exception = httpcore.ConnectError(f"{host} does not resolve")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                last = error
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook endpoints")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, resolver: DnsResolver, *, allow_internal: bool) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(resolver, allow_internal=allow_internal),
        )


def http_client(resolver: DnsResolver, *, allow_internal: bool) -> httpx.AsyncClient:
    """No redirects followed, no proxies from the environment, a 10 s timeout."""
    return httpx.AsyncClient(
        transport=_GuardedTransport(resolver, allow_internal=allow_internal),
        follow_redirects=False,
        trust_env=False,
        timeout=TIMEOUT_S,
    )


class HttpWebhookSender:
    def __init__(self, client: httpx.AsyncClient, timeout_s: float = TIMEOUT_S) -> None:
        self._client = client
        self._timeout_s = timeout_s

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """Any 2xx within the timeout is delivered; the answer's body is never read."""
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._client.stream("POST", url, content=body, headers=dict(headers)) as answer,
            ):
                status = answer.status_code
        except (TimeoutError, httpx.TimeoutException):
            error = "timeout"
        except httpx.HTTPError as failure:
            error = _failure(failure)
        if status is not None and 300 <= status < 400:
            error = "redirect_not_followed"
        elif status is not None and not 200 <= status < 300:
            error = f"http_{status}"
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        return SendResult(status, error, elapsed_ms)


def _failure(failure: httpx.HTTPError) -> str:
    if isinstance(failure.__cause__, AddressNotAllowed):  # httpx wraps httpcore's errors
        return "address_not_allowed"
    return f"connection_failed: {type(failure).__name__}"
