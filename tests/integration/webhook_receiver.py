"""A merchant's webhook receiver for end-to-end tests: a tiny ASGI app under uvicorn on a
free port, in the test's event loop. It verifies every delivery as it arrives, twice: with
Stripe's published algorithm (written out here, independently of the gateway's code) and
with `gateway.webhooks.verify`; it answers 500 to its first `failures` requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from gateway import webhooks
from tests.fixtures.processes import free_port

TOLERANCE_S = 300


def stripe_verify(payload: bytes, header: str, secret: str, now: float) -> bool:
    """Stripe's scheme: split `t=…,v1=…`, HMAC-SHA256 the string `"{t}.{payload}"` with the
    secret, compare in constant time with each `v1`, and refuse an old timestamp."""
    pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
    timestamps = [value for key, value in pairs if key == "t"]
    signatures = [value for key, value in pairs if key == "v1"]
    if len(timestamps) != 1 or not signatures:
        return False
    signed = timestamps[0].encode() + b"." + payload
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(now - int(timestamps[0])) <= TOLERANCE_S
    return fresh and any(hmac.compare_digest(expected, s) for s in signatures)


@dataclass(frozen=True)
class Delivery:
    body: bytes
    headers: dict[str, str]
    received_at: float
    stripe_valid: bool
    gateway_valid: bool
    status: int


@dataclass
class Receiver:
    failures: int = 3
    secret: str = ""
    port: int = field(default_factory=free_port)
    received: list[Delivery] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        header = headers.get("gateway-signature", "")
        status = 500 if len(self.received) < self.failures else 200
        self.received.append(
            Delivery(
                body=body,
                headers=headers,
                received_at=time.time(),
                stripe_valid=stripe_verify(body, header, self.secret, time.time()),
                gateway_valid=webhooks.verify(body, header, self.secret),
                status=status,
            )
        )
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"down"})

    async def wait_for(self, count: int, timeout_s: float = 20) -> list[Delivery]:
        async with asyncio.timeout(timeout_s):
            while len(self.received) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        return self.received


@asynccontextmanager
async def running_receiver(failures: int = 3) -> AsyncIterator[Receiver]:
    receiver = Receiver(failures)
    config = uvicorn.Config(
        receiver, host="127.0.0.1", port=receiver.port, lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
