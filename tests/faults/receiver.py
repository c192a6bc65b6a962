"""A merchant's webhook endpoint for the fault suite: records every request and verifies
its signature as it arrives (Stripe's published algorithm, and `gateway.webhooks.verify`).

Served on a thread of its own (`serving`), so it keeps answering while the test blocks.
`fail_first`: the first request for each event is answered 500 (the retry then waits in
the broker); `hold_s`: every request is held that long before the answer, so attempts are
in flight when the test strikes. `in_flight` counts requests not yet answered.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway import webhooks
from tests.integration.webhook_receiver import stripe_verify


@dataclass(frozen=True)
class Received:
    event_id: str
    body: bytes
    status: int
    verified: bool


@dataclass
class WebhookSink:
    secret: str = ""
    fail_first: bool = False
    hold_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender died before its body arrived (a killed `gateway webhooks`)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        header, event_id = headers.get("gateway-signature", ""), headers.get("gateway-event-id", "")
        with self._lock:
            self._seen[event_id] += 1
            first, self.in_flight = self._seen[event_id] == 1, self.in_flight + 1
        status = 500 if self.fail_first and first else 200
        verified = stripe_verify(body, header, self.secret, time.time()) and webhooks.verify(
            body, header, self.secret
        )
        try:
            await asyncio.sleep(self.hold_s)
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"no"})
        finally:
            with self._lock:
                self.in_flight -= 1
                self.received.append(Received(event_id, body, status, verified))

    def answered_ok(self) -> set[str]:
        """Events answered 200 at least once."""
        with self._lock:
            return {r.event_id for r in self.received if r.status == 200}

    def by_event(self) -> dict[str, list[Received]]:
        with self._lock:
            grouped: dict[str, list[Received]] = {}
            for r in self.received:
                grouped.setdefault(r.event_id, []).append(r)
            return grouped

    def dump(self) -> str:
        """Every body received, one a line: evidence for the card-data scan."""
        with self._lock:
            return "\n".join(json.dumps(r.body.decode(errors="replace")) for r in self.received)
