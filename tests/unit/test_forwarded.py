"""Forwarded headers are believed from trusted proxies only, right-most untrusted hop first."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from gateway.entrypoints.http.forwarded import ForwardedHeaders, forwarded_client, is_trusted

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("hops", "client"),
    [
        (["203.0.113.7"], "203.0.113.7"),
        (["198.51.100.1", "203.0.113.7"], "203.0.113.7"),  # the left one is the client's word
        (["203.0.113.7", "10.0.0.5"], "203.0.113.7"),  # a second proxy of ours in the chain
        (["10.0.0.9", "10.0.0.5"], "10.0.0.9"),  # only our proxies: the left-most
        (["203.0.113.7:5678"], "203.0.113.7"),
        (["[2001:db8::1]:443"], "2001:db8::1"),
        (["2001:db8::1"], "2001:db8::1"),
        (["::ffff:203.0.113.7"], "203.0.113.7"),
        (["not-an-address"], "10.0.0.1"),  # a proxy wrote nonsense: the socket peer
        ([], "10.0.0.1"),
    ],
)
def test_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(
    hops: list[str], client: str
) -> None:
    assert forwarded_client("10.0.0.1", hops, PROXIES) == client


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("fd00::1", True),
        ("11.0.0.1", False),
        ("testclient", False),
        ("", False),
    ],
)
def test_trust_is_membership_of_a_configured_network(host: str, trusted: bool) -> None:
    assert is_trusted(host, PROXIES) is trusted


async def _seen_scope(peer: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = {"type": "http", "client": (peer, 4000), "scheme": "http", "headers": headers}
    await ForwardedHeaders(app, PROXIES)(scope, None, None)  # type: ignore[arg-type]
    return seen


async def test_headers_from_a_trusted_peer_set_client_and_scheme() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.1, 203.0.113.7"), (b"x-forwarded-proto", b"https")]

    scope = await _seen_scope("10.0.0.1", headers)

    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


async def test_headers_from_anyone_else_are_ignored() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]

    scope = await _seen_scope("198.51.100.9", headers)

    assert scope["client"] == ("198.51.100.9", 4000)
    assert scope["scheme"] == "http"


async def test_several_forwarded_for_headers_read_as_one_list() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-for", b"203.0.113.7")]

    scope = await _seen_scope("10.0.0.1", headers)

    assert scope["client"] == ("203.0.113.7", 0)


async def test_unknown_forwarded_proto_is_ignored() -> None:
    scope = await _seen_scope("10.0.0.1", [(b"x-forwarded-proto", b"gopher")])

    assert scope["scheme"] == "http"
