"""The bank simulator: a small Litestar service speaking the bank's wire protocol.

`POST /payments` (header `Idempotency-Key`), `GET /payments/{key}` and `GET /ledger`, with
the test cards of API.md. Every app has its own ledger, so several can share a process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import FromPath
from litestar.response import Stream

from gateway.adapters.bank_simulator_ledger import (
    LATE_DECLINE_CODE,
    PENDING,
    Answer,
    Entry,
    Ledger,
    Script,
    authorized,
    valid_key,
)
from gateway.adapters.bank_simulator_webhooks import Callbacks

_log = structlog.get_logger(__name__)


class ConnectionDropped(Exception):
    """Raised after the status line went out: the client sees a broken connection."""


def create_simulator_app(
    *,
    latency_ms: int = 50,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    webhook_delay_s: float = 1.0,
    hang_s: float = 30.0,
    webhook_backoff_s: float = 0.5,
) -> Litestar:
    """`webhook_url`: where the pending cards' callbacks go, signed with `webhook_secret`
    (required with it: an unsigned callback would only be refused); None: no callbacks."""
    if webhook_url is not None and not webhook_secret:
        raise ValueError("the bank simulator needs a webhook secret to sign its callbacks")
    callbacks = Callbacks(
        url=webhook_url, secret=webhook_secret, delay_s=webhook_delay_s, backoff_s=webhook_backoff_s
    )
    bank = _Simulator(Ledger(), callbacks, latency_s=latency_ms / 1000, hang_s=hang_s)

    @post("/payments", status_code=200, operation_id="authorize")
    async def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
        return await bank.pay(request.headers.get("idempotency-key"), await request.body())

    @get("/payments/{key:path}", operation_id="payment_status")
    async def payment_status(key: FromPath[str]) -> Response[Any]:
        return bank.status(key.removeprefix("/"))  # a key may hold "/"

    @get("/ledger", operation_id="ledger")
    async def ledger() -> dict[str, Any]:
        return {"payments": bank.ledger.rows()}

    return Litestar(
        [authorize, payment_status, ledger],
        on_startup=[callbacks.announce],
        on_shutdown=[callbacks.close],
        openapi_config=None,
        logging_config=None,
    )


class _Simulator:
    def __init__(
        self, ledger: Ledger, callbacks: Callbacks, *, latency_s: float, hang_s: float
    ) -> None:
        self.ledger = ledger
        self._callbacks = callbacks
        self._latency_s = latency_s
        self._hang_s = hang_s

    async def pay(self, key: str | None, raw: bytes) -> Response[Any]:
        if key is None or not valid_key(key):
            return _error(400, "the Idempotency-Key header is missing or invalid")
        charge = self.ledger.parse(raw)
        if isinstance(charge, str):
            return _error(400, charge)
        entry, first = self.ledger.receive(key, charge)
        if entry.charge.fingerprint != charge.fingerprint:
            return _error(400, "the Idempotency-Key was already used for another request")
        await asyncio.sleep(self._latency_s)
        script = entry.charge.script
        if script is Script.FAIL:
            return _error(503, "the bank is unavailable")
        if first and script is Script.HANG:
            await asyncio.sleep(self._hang_s)  # the client gives up; its retry is answered
        if entry.answer is not None:
            return _reply(entry.answer)
        answer = self._decide(entry)
        if first and script is Script.DROP:
            return Stream(_BrokenBody(), media_type=MediaType.JSON)
        return _reply(answer)

    def status(self, key: str) -> Response[Any]:
        entry = self.ledger.get(key)
        if entry is None or entry.answer is None:
            return _error(404, "the bank has no answer for this Idempotency-Key")
        return _reply(entry.answer)

    def _decide(self, entry: Entry) -> Answer:
        """Records the bank's answer for `entry`; returns what this call answers."""
        reply: Answer
        match entry.charge.script:
            case Script.DECLINE:
                entry.answer = reply = Answer("declined", entry.charge.decline_code)
            case Script.LATE_AUTHORIZE:
                entry.answer = reply = PENDING
                self._callbacks.settle_later(entry, authorized())
            case Script.LATE_DECLINE:
                entry.answer = reply = PENDING
                self._callbacks.settle_later(entry, Answer("declined", LATE_DECLINE_CODE))
            case Script.SILENT:
                entry.answer, reply = authorized(), PENDING  # and the callback never comes
            case _:
                entry.answer = reply = authorized()
        _log.info("bank_answered", idempotency_key=entry.key, outcome=reply.outcome)
        return reply


class _BrokenBody:
    """A response body that fails before its first byte."""

    def __aiter__(self) -> _BrokenBody:
        return self

    async def __anext__(self) -> bytes:
        raise ConnectionDropped("test card ending 3022: the connection drops before the answer")


def _reply(answer: Answer) -> Response[Any]:
    return Response(answer.body, status_code=answer.status)


def _error(status: int, message: str) -> Response[Any]:
    return Response({"error_message": message}, status_code=status)
