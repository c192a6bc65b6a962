"""Test support for bank tests: a stand-in for the Checkout.com challenge bank simulator, a
scripted bank, and a helper that serves an ASGI app with uvicorn on a free localhost port.

The base bank speaks only the challenge protocol: no idempotency, no status lookup (every
GET answers 404). A card number ending in an odd digit is authorized, an even one declined,
a 0 makes the bank answer 503. It records every request it receives.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

_FIELDS = ("card_number", "expiry_date", "currency", "amount", "cvv")

Scope = dict[str, Any]
Receive = Any
Send = Any


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serves `app` with uvicorn on 127.0.0.1 in this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="auto", log_level="critical"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class BaseBank:
    """The challenge's bank simulator, as a raw ASGI app."""

    received: list[Received] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = await _read(scope, receive)
        self.received.append(request)
        if request.method != "POST" or request.path != "/payments":
            await _answer(send, 404, {"error_message": "Not found"})
            return
        await _answer(send, *_decide(request.body))


@dataclass
class ScriptedBank:
    """Answers each request with the next (status, raw body) of its script."""

    script: list[tuple[int, bytes]]
    received: list[Received] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def until_received(self, count: int) -> None:
        while len(self.received) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.received.append(await _read(scope, receive))
        self._arrived.set()
        status, body = self.script.pop(0)
        await send({"type": "http.response.start", "status": status, "headers": _headers(body)})
        await send({"type": "http.response.body", "body": body})


def _decide(raw: bytes) -> tuple[int, dict[str, Any] | None]:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict) or any(name not in body for name in _FIELDS):
        return 400, {"error_message": "Not all required properties are sent in the request"}
    last = str(body["card_number"])[-1:]
    if last == "0":
        return 503, None
    if last in "13579":
        return 200, {"authorized": True, "authorization_code": str(uuid.uuid4())}
    return 200, {"authorized": False, "authorization_code": ""}


async def _read(scope: Scope, receive: Receive) -> Received:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    return Received(scope["method"], scope["path"], headers, body)


async def _answer(send: Send, status: int, body: dict[str, Any] | None) -> None:
    raw = b"" if body is None else json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": _headers(raw)})
    await send({"type": "http.response.body", "body": raw})


def _headers(raw: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
