"""The HTTP sender over real sockets: 2xx, redirects, timeouts, and the address check made
when the connection is opened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from gateway.adapters.webhook_sender import DnsResolver, HttpWebhookSender, http_client
from tests.fixtures.processes import free_port

Answer = Callable[[], tuple[int, list[tuple[bytes, bytes]]]]


@asynccontextmanager
async def serving(answer: Answer, delay_s: float = 0.0) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A local server answering every request with `answer()`; yields its URL and the bodies."""
    bodies: list[bytes] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        bodies.append((await receive()).get("body", b""))
        await asyncio.sleep(delay_s)
        status, headers = answer()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/hooks", bodies
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def sender(
    *, allow_internal: bool, timeout_s: float = 10
) -> AsyncIterator[HttpWebhookSender]:
    client = http_client(DnsResolver(), allow_internal=allow_internal)
    try:
        yield HttpWebhookSender(client, timeout_s)
    finally:
        await client.aclose()


async def test_a_2xx_answer_is_a_delivery() -> None:
    async with serving(lambda: (204, [])) as (url, bodies), sender(allow_internal=True) as post:
        result = await post.post(url, b'{"id":"evt_1"}', {"Content-Type": "application/json"})

    assert (result.status_code, result.error, result.delivered) == (204, None, True)
    assert bodies == [b'{"id":"evt_1"}']
    assert result.duration_ms >= 0


async def test_a_redirect_is_not_followed_and_counts_as_a_failure() -> None:
    redirect = (302, [(b"location", b"http://127.0.0.1:1/elsewhere")])
    async with serving(lambda: redirect) as (url, bodies), sender(allow_internal=True) as post:
        result = await post.post(url, b"{}", {})

    assert (result.status_code, result.error, result.delivered) == (
        302,
        "redirect_not_followed",
        False,
    )
    assert len(bodies) == 1


async def test_an_answer_later_than_the_timeout_is_a_failure() -> None:
    async with (
        serving(lambda: (200, []), delay_s=1.0) as (url, _),
        sender(allow_internal=True, timeout_s=0.2) as post,
    ):
        result = await post.post(url, b"{}", {})

    assert (result.status_code, result.error) == (None, "timeout")


async def test_an_internal_address_is_refused_when_connecting_unless_allowed() -> None:
    async with serving(lambda: (200, [])) as (url, bodies):
        async with sender(allow_internal=False) as strict:
            refused = await strict.post(url, b"{}", {})
            by_name = await strict.post(url.replace("127.0.0.1", "localhost"), b"{}", {})
        assert bodies == []  # nothing reached the internal address
        async with sender(allow_internal=True) as lenient:
            allowed = await lenient.post(url, b"{}", {})

    assert (refused.status_code, refused.error) == (None, "address_not_allowed")
    assert (by_name.status_code, by_name.error) == (None, "address_not_allowed")
    assert allowed.status_code == 200


async def test_a_closed_port_is_a_connection_failure() -> None:
    async with sender(allow_internal=True) as post:
        result = await post.post(f"http://127.0.0.1:{free_port()}/", b"{}", {})

    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("connection_failed")


async def test_the_resolver_answers_nothing_for_a_name_that_does_not_resolve() -> None:
    resolver = DnsResolver()

    assert await resolver.resolve("does-not-exist.invalid", 443) == []
    assert "127.0.0.1" in await resolver.resolve("localhost", 80)
