"""Where merchant webhooks may go: absolute http(s) URLs to public addresses only.

Checked when an endpoint is registered (after DNS resolution) and again when each
attempt connects, so a name that later resolves inside the network is refused too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.domain.result import Err, Ok, Result

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class UrlInvalid:
    message: str


@dataclass(frozen=True, slots=True)
class UrlNotAllowed:
    message: str


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    value: str
    scheme: str
    host: str
    port: int

    @property
    def is_https(self) -> bool:
        return self.scheme == "https"


def parse_url(raw: str) -> Result[WebhookUrl, UrlInvalid]:
    invalid = Err(UrlInvalid("must be an absolute http or https URL"))
    if not raw or len(raw) > MAX_URL_LENGTH or not raw.isascii() or not raw.isprintable():
        return invalid
    if any(char.isspace() for char in raw):
        return invalid
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return invalid
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return invalid
    default_port = 443 if scheme == "https" else 80
    return Ok(WebhookUrl(raw, scheme, parts.hostname, port or default_port))


def is_internal(address: str) -> bool:
    """True for loopback, private, link-local, reserved, multicast, unspecified and other
    non-global addresses, IPv4 and IPv6 (an IPv4 address embedded in IPv6 counts as IPv4).
    Anything that is not an IP address is internal: it cannot be checked."""
    try:
        ip: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    return any(_is_internal(candidate) for candidate in _embedded(ip))


def _embedded(ip: IpAddress) -> Iterable[IpAddress]:
    """The address to judge, and any IPv4 address it carries (an IPv4-mapped address is
    judged as the IPv4 address it maps)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
        return
    yield ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.sixtofour is not None:
            yield ip.sixtofour
        if ip.teredo is not None:
            yield from ip.teredo
        if ip in _NAT64:
            yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _is_internal(ip: IpAddress) -> bool:
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def address_allowed(addresses: Iterable[str]) -> Result[None, UrlNotAllowed]:
    """Allowed only if the name resolved and every address it resolved to is public."""
    found = list(addresses)
    if not found:
        return Err(UrlNotAllowed("the host does not resolve"))
    if any(is_internal(address) for address in found):
        return Err(UrlNotAllowed("the host resolves to an internal address"))
    return Ok(None)
