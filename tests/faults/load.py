"""Load for the fault scenarios: payments POSTed over HTTP, in bursts or at a steady rate,
each one retried under its Idempotency-Key as a merchant would."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.fixtures.faults import AMEX_CVV, CVV, payment_body

RETRIED = (409, 503)

GOOD_CARDS = ("4242424242424242", "5555555555554444", "378282246310005")
FAILING_CARD = "4000000000000119"  # the bank answers 503 every time
DECLINED_CARD = "4000000000000002"  # declined, card_declined
ALL_CARDS = (*GOOD_CARDS, FAILING_CARD, DECLINED_CARD)
CVVS = (CVV, AMEX_CVV)

Body = Callable[[int], tuple[str, dict[str, Any]]]
"""The n-th request of a load: its Idempotency-Key and its body."""


def orders(tag: str, cards: tuple[str, ...] = GOOD_CARDS) -> Body:
    """Payments `<tag>-<n>` (key and reference), cycling through `cards`."""

    def body(n: int) -> tuple[str, dict[str, Any]]:
        key = f"{tag}-{n:05d}"
        return key, payment_body(cards[n % len(cards)], reference=key)

    return body


@dataclass
class Accepted:
    key: str
    payment_id: str
    job_id: str
    at: float  # time.monotonic() of the 202


@dataclass
class Answers:
    """Every answer the load received, by status, and the accepted payments."""

    accepted: list[Accepted] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    refused: list[httpx.Response] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # requests that got no answer

    @property
    def last_accept(self) -> float:
        return max(a.at for a in self.accepted)


async def submit(
    client: httpx.AsyncClient, key: str, body: dict[str, Any], answers: Answers, *, retry: bool
) -> None:
    """POSTs until `202`; with `retry`, a 409 or 503 is sent again after its Retry-After."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = await client.post("/payments", json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError as error:  # no answer: a merchant sends it again
            answers.errors[type(error).__name__] += 1
            if not retry or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)
            continue
        answers.statuses[response.status_code] += 1
        if response.status_code == 202:
            job = response.json()
            answers.accepted.append(Accepted(key, job["payment_id"], job["id"], time.monotonic()))
            return
        answers.refused.append(response)
        if not retry or response.status_code not in RETRIED or time.monotonic() > deadline:
            return
        await asyncio.sleep(min(1.0, float(response.headers.get("retry-after", "1"))))


async def burst(
    client: httpx.AsyncClient, count: int, body: Body, *, concurrency: int = 48, retry: bool = True
) -> Answers:
    """`count` payments, `concurrency` at a time."""
    answers = Answers()
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            await submit(client, *body(n), answers, retry=retry)

    await asyncio.gather(*(one(n) for n in range(count)))
    return answers


async def steady(
    client: httpx.AsyncClient, per_s: float, seconds: float, body: Body, answers: Answers
) -> None:
    """A payment every 1/`per_s` seconds for `seconds`, each retried until accepted."""
    tasks, started = [], time.monotonic()
    for n in range(int(per_s * seconds)):
        await asyncio.sleep(max(0.0, started + n / per_s - time.monotonic()))
        tasks.append(asyncio.create_task(submit(client, *body(n), answers, retry=True)))
    await asyncio.gather(*tasks)
