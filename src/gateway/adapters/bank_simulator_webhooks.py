"""The bank simulator's callbacks: settle a pending payment later and post a signed webhook.

Each callback runs in a background task owned by `Callbacks`; `close()` (called on the
app's shutdown) cancels whatever is still waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time

import httpx
import structlog

from gateway.adapters.bank_simulator_ledger import Answer, Entry

_log = structlog.get_logger(__name__)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Bank-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256>`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_body(key: str, answer: Answer) -> bytes:
    authorized = answer.outcome == "authorized"
    event = {
        "id": f"evt_{secrets.token_hex(12)}",
        "type": "payment.authorized" if authorized else "payment.declined",
        "idempotency_key": key,
        "authorization_code": answer.code if authorized else "",
        "decline_code": None if authorized else answer.code,
    }
    return json.dumps(event).encode()


class Callbacks:
    def __init__(
        self,
        *,
        url: str | None,
        secret: str | None,
        delay_s: float,
        backoff_s: float = 0.5,
        attempts: int = 5,
    ) -> None:
        self._url = url
        self._secret = secret
        self._delay_s = delay_s
        self._backoff_s = backoff_s
        self._attempts = attempts
        self._tasks: set[asyncio.Task[None]] = set()

    def announce(self) -> None:
        """One line when the simulator starts: where its callbacks go, or that it sends none."""
        if self._url is None or self._secret is None:
            _log.warning("bank_callbacks_off", reason="no webhook secret to sign them with")
        else:
            _log.info("bank_callbacks_on", url=self._url)

    def settle_later(self, entry: Entry, final: Answer) -> None:
        """After the delay, `entry` is settled with `final` and the receiver is told."""
        task = asyncio.create_task(self._settle(entry, final))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _settle(self, entry: Entry, final: Answer) -> None:
        await asyncio.sleep(self._delay_s)
        entry.answer = final
        if self._url is not None:
            await self._deliver(self._url, event_body(entry.key, final), entry.key)

    async def _deliver(self, url: str, body: bytes, key: str) -> None:
        async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as client:
            for attempt in range(self._attempts):
                if attempt:
                    await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
                try:
                    response = await client.post(url, content=body, headers=self._headers(body))
                except httpx.HTTPError as exc:
                    _log.warning(
                        "bank_webhook_failed", idempotency_key=key, error=type(exc).__name__
                    )
                    continue
                if response.is_success:
                    return
                _log.warning(
                    "bank_webhook_refused", idempotency_key=key, status=response.status_code
                )
        _log.error("bank_webhook_given_up", idempotency_key=key, attempts=self._attempts)

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers["Bank-Signature"] = signature(self._secret, int(time.time()), body)
        return headers
