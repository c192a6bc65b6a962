"""Who the client is behind the load balancer: forwarded headers from trusted proxies only.

The API sits behind a load balancer that terminates TLS. `X-Forwarded-For` and
`X-Forwarded-Proto` are believed only when the socket peer is inside
`GATEWAY_TRUSTED_PROXIES`: the client is then the right-most address of `X-Forwarded-For`
that is not itself a trusted proxy (everything left of it may have been written by the
client), and the scheme is the proxy's `X-Forwarded-Proto`. From any other peer the
headers are ignored, since anyone can send them. Like uvicorn's proxy-headers middleware,
this rewrites `scope["client"]` and `scope["scheme"]`, so everything after it (access log,
rate limits, absolute URLs) sees the real client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN_CLIENT = "unknown"


def _address(raw: str) -> Address | None:
    text = raw.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 203.0.113.7:5678
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(host: str, trusted: Sequence[Network]) -> bool:
    address = _address(host)
    return address is not None and any(address in network for network in trusted)


def _header(scope: Scope, name: bytes) -> list[str]:
    values = [value.decode("latin-1") for key, value in scope["headers"] if key == name]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def forwarded_client(peer: str, hops: Sequence[str], trusted: Sequence[Network]) -> str:
    """The right-most hop that is not a trusted proxy; the peer when the header is unusable."""
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a trusted proxy wrote nonsense: fall back on what the socket says
        if not any(address in network for network in trusted):
            return str(address)
    return str(_address(hops[0])) if hops else peer  # every hop is one of ours


def client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_CLIENT


class ForwardedHeaders:
    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)
        # Peers are few (the load balancers) and parsing an address costs more than the
        # rest of this layer: remember the answer per peer.
        self._trusted_peer = functools.lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, host: str) -> bool:
        return bool(self.trusted) and is_trusted(host, self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and self._trusted_peer(client_host(scope)):
            peer = client_host(scope)
            hops = _header(scope, b"x-forwarded-for")
            scope["client"] = (forwarded_client(peer, hops, self.trusted), 0)
            proto = _header(scope, b"x-forwarded-proto")
            if proto and proto[-1].lower() in {"http", "https"}:
                scope["scheme"] = proto[-1].lower()
        await self.app(scope, receive, send)
