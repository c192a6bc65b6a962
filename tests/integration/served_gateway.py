"""The gateway app under uvicorn on a real port, in the test's event loop, so that the
bank simulator's signed callbacks reach its `/webhooks/bank` over HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from litestar import Litestar
from sqlalchemy import text

from gateway import bootstrap

PENDING_CARDS = {"webhook_authorized": "4000000000003006", "webhook_declined": "4000000000003014"}
SILENT_CARD = "4000000000003048"
BANK_SECRET = "bank-webhook-secret-for-tests"


def webhook_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/webhooks/bank"


@asynccontextmanager
async def served(app: Litestar, port: int) -> AsyncIterator[httpx.AsyncClient]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        async with asyncio.timeout(30):
            await task


def card_body(number: str) -> dict[str, Any]:
    card = {"number": number, "expiry_month": 12, "expiry_year": 2031, "cvv": "123"}
    return {"amount": 1050, "currency": "GBP", "card": card}


async def pay(client: httpx.AsyncClient, api_key: str, number: str) -> str:
    """Requests a payment; returns its job's location."""
    headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": os.urandom(8).hex()}
    response = await client.post("/payments", json=card_body(number), headers=headers)
    assert response.status_code == 202, response.text
    return response.headers["location"]


async def final_job(
    client: httpx.AsyncClient, api_key: str, location: str, timeout_s: float
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"}
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = (await client.get(location, headers=headers)).json()
        if job["status"] != "created" or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


async def payment_of(client: httpx.AsyncClient, api_key: str, job: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {api_key}"}
    return (await client.get(job["links"]["payment"], headers=headers)).json()


async def callbacks_of(container: bootstrap.Container, payment_id: str) -> list[tuple[str, str]]:
    """(type, outcome) of every recorded bank callback for the payment."""
    query = text("SELECT type, outcome FROM bank_callbacks WHERE payment_id = :id")
    async with container.engine().connect() as connection:
        rows = (await connection.execute(query, {"id": payment_id})).all()
    return [(row[0], row[1]) for row in rows]


async def pending_rows(container: bootstrap.Container) -> int:
    async with container.engine().connect() as connection:
        count = await connection.scalar(text("SELECT count(*) FROM pending_payments"))
    return int(count or 0)
