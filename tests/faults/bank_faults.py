"""Faults between the worker and the bank simulator: an HTTP proxy of the test's own.

The worker's `GATEWAY_BANK_URL` points here. Every call goes on to the simulator unchanged,
except while a fault is on (the fault in force when the call arrives):

- `UNAVAILABLE`: the proxy answers `503` itself; the bank never sees the call;
- `SLOW`: the call goes on to the bank, which decides (and charges), and its answer is
  held for `hold_s`, past the worker's timeout; status lookups are held as well;
- `DROP`: a payment call goes on to the bank, which charges, then the connection breaks
  after the status line, before the body; status lookups pass.

Nothing of this is in the gateway or the simulator: the simulator keeps its contract and
its ledger stays the oracle of what was charged.
"""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


class Fault(enum.Enum):
    UNAVAILABLE = "bank answers 503"
    SLOW = "bank answers after the timeout"
    DROP = "bank charges, the answer is lost"


@dataclass
class BankFaults:
    bank_url: str
    hold_s: float = 3.0
    fault: Fault | None = None
    counts: Counter[str] = field(default_factory=Counter)
    _client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        fault = self.fault
        if fault is Fault.UNAVAILABLE:
            self.counts["answered 503 by the proxy"] += 1
            await _answer(send, 503, b'{"error_message": "the bank is unavailable"}')
            return
        response = await self._forward(scope, body)
        if fault is Fault.SLOW:
            self.counts["answers held past the timeout"] += 1
            await asyncio.sleep(self.hold_s)  # the worker has given up by now
        elif fault is Fault.DROP and scope["method"] == "POST":
            self.counts["answers dropped after the charge"] += 1
            length = str(len(response.content)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", length)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            return  # an unfinished answer: uvicorn closes the connection
        await _answer(send, response.status_code, response.content)

    async def _forward(self, scope: dict[str, Any], body: bytes) -> httpx.Response:
        if self._client is None:  # made on the loop that serves the proxy
            self._client = httpx.AsyncClient(base_url=self.bank_url, timeout=60)
        wanted = (b"idempotency-key", b"content-type")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k in wanted]
        path = scope.get("raw_path") or scope["path"].encode()
        return await self._client.request(
            scope["method"], path.decode(), content=body, headers=headers
        )


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
