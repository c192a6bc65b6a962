"""The request every scenario sends: a `POST /payments` with a fresh Idempotency-Key."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec

from loadgen import Answer, MakeRequest, Request

CARD = {
    "number": "4242424242424242",
    "expiry_month": 12,
    "expiry_year": 2031,
    "cvv": "123",
    "holder_name": "Jane Doe",
}


def payment_body(n: int) -> bytes:
    body = {"amount": 1050, "currency": "GBP", "reference": f"ORD-{n}", "card": CARD}
    return msgspec.json.encode(body)


def payments(api_key: str, run: str | None = None) -> MakeRequest:
    """The n-th payment of this run; keys never repeat across runs."""
    run = run or uuid.uuid4().hex[:12]
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def make(n: int) -> Request:
        return Request(
            "POST", "/payments", {**headers, "Idempotency-Key": f"{run}-{n}"}, payment_body(n)
        )

    return make


def job_ids(into: list[str]) -> Callable[[Request, Answer], None]:
    """Collects the job id of every accepted payment."""

    def collect(_request: Request, answer: Answer) -> None:
        if answer.status == 202:
            into.append(msgspec.json.decode(answer.body)["id"])

    return collect
