"""Test support for the HTTP tests: the real app on a real SQLite file, and a client.

The app runs in the test's own event loop (httpx's ASGI transport inside the app's
lifespan), so requests really overlap: Litestar's AsyncTestClient would run the app in a
portal thread and answer one request at a time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import httpx
from litestar import Litestar

from gateway import bootstrap
from gateway.config import Settings
from gateway.domain.commands import CreateMerchant
from gateway.entrypoints.http.app import create_app

VISA = "4242424242424242"
CVV = "987"
PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "code", "detail", "request_id"}


def payment_body(number: str = VISA, **fields: Any) -> dict[str, Any]:
    cvv = "9876" if number.startswith(("34", "37")) else CVV
    card = {"number": number, "expiry_month": 12, "expiry_year": 2031, "cvv": cvv}
    card |= fields.pop("card", {})
    return {"amount": 1050, "currency": "GBP", "card": card} | fields


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    assert PROBLEM_KEYS <= problem.keys() <= PROBLEM_KEYS | {"errors"}
    assert problem["type"] == f"/errors/{code}"
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


@dataclass
class Gateway:
    client: httpx.AsyncClient
    container: bootstrap.Container
    api_key: str

    def headers(
        self, idempotency_key: str | None = None, api_key: str | None = None
    ) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {api_key or self.api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def new_api_key(self, name: str = "other") -> str:
        issued = await self.container.mediator().send(CreateMerchant(name))
        return issued.api_key.value

    async def pay(
        self, body: Any = None, key: str | None = None, api_key: str | None = None
    ) -> httpx.Response:
        key = key or os.urandom(8).hex()
        return await self.client.post(
            "/payments",
            json=payment_body() if body is None else body,
            headers=self.headers(key, api_key),
        )

    async def get(self, path: str, api_key: str | None = None, **params: str) -> httpx.Response:
        headers = self.headers(api_key=api_key)
        if params:  # httpx would drop a query string already in `path` for `params={}`
            return await self.client.get(path, params=params, headers=headers)
        return await self.client.get(path, headers=headers)

    async def final_job(self, location: str, timeout_s: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job: dict[str, Any] = (await self.get(location)).json()
            if job["status"] != "created" or time.monotonic() > deadline:
                return job
            await asyncio.sleep(0.02)

    async def settled_payment(self, number: str = VISA) -> dict[str, Any]:
        accepted = await self.pay(payment_body(number))
        assert accepted.status_code == 202, accepted.text
        job = await self.final_job(accepted.headers["location"])
        payment: dict[str, Any] = (await self.get(job["links"]["payment"])).json()
        return payment


def gateway_settings(tmp_path: Path, **overrides: Any) -> Settings:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}",
        card_key=os.urandom(32),
        bank_latency_ms=0,
        bank_attempts=2,
        api_key_cache_s=0,
    )
    return replace(settings, **overrides)


@asynccontextmanager
async def running_gateway(
    tmp_path: Path,
    settings: Mapping[str, Any] | None = None,
    before_app: Callable[[bootstrap.Container], object] | None = None,
) -> AsyncIterator[Gateway]:
    """A migrated database with one merchant; `before_app` may override providers."""
    container = bootstrap.build(gateway_settings(tmp_path, **(settings or {})))
    await bootstrap.migrate_database(container)
    issued = await container.mediator().send(CreateMerchant("m"))
    if before_app is not None:
        before_app(container)
    async with serving(create_app(container, embedded_relay=True)) as client:
        yield Gateway(client, container, issued.api_key.value)


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cast("Any", app))  # Litestar's ASGI types are narrower
    async with (
        _lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        yield client


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    """Startup and shutdown in a task of their own, as a server runs them: pytest-asyncio
    sets a fixture up and tears it down in different tasks."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    await asyncio.wait({task, asyncio.create_task(started.wait())}, return_when="FIRST_COMPLETED")
    if task.done():
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task
