"""The ceiling: the least a payment API on this stack can do per request.

A Litestar app that decodes the same JSON body as `POST /payments` with msgspec and
does one INSERT through an asyncpg pool, served by the same server function as the
gateway's API (`gateway.entrypoints.serve.serve_asgi`: the same server, loop, HTTP
parser and settings). Run: `python bench/ceiling_app.py --port 8001 --database-url
postgresql://postgres@127.0.0.1:5432/db`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get, post

from gateway.entrypoints.serve import serve_asgi

TABLES = ("ceiling_payments", "ceiling_jobs", "ceiling_cards", "ceiling_outbox", "ceiling_keys")
VARIANTS = ("one-insert", "five-in-tx", "five-in-one")
"""`one-insert` is the ceiling. The others show what the accept path's five rows cost:
`five-in-tx` as BEGIN, five INSERTs and COMMIT (seven round trips, as a unit of work
does), `five-in-one` as one statement of five INSERTs in CTEs (one round trip)."""

_INSERT = "INSERT INTO {} (id, amount, currency, body) VALUES ($1, $2, $3, $4)"
_ONE_STATEMENT = (
    "WITH "
    + ", ".join(f"r{n} AS ({_INSERT.format(table)})" for n, table in enumerate(TABLES[1:]))
    + " "
    + _INSERT.format(TABLES[0])
)


async def _create_tables(pool: asyncpg.Pool) -> None:
    for table in TABLES:
        await pool.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, amount bigint NOT NULL,"
            " currency text NOT NULL, body text NOT NULL)"
        )


async def _write(pool: asyncpg.Pool, variant: str, row: tuple[object, ...]) -> None:
    if variant == "one-insert":
        await pool.execute(_INSERT.format(TABLES[0]), *row)
    elif variant == "five-in-one":
        await pool.execute(_ONE_STATEMENT, *row)
    else:
        async with pool.acquire() as connection, connection.transaction():
            for table in TABLES:
                await connection.execute(_INSERT.format(table), *row)


def create_app(database_url: str, variant: str = "one-insert", pool_size: int = 30) -> Litestar:
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(database_url, min_size=pool_size, max_size=pool_size)
        await _create_tables(pool)
        state["pool"] = pool
        try:
            yield
        finally:
            await pool.close()

    @post("/payments", status_code=202)
    async def accept(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = msgspec.json.decode(await request.body())
        payment_id = uuid.uuid4().hex
        row = (payment_id, body["amount"], body["currency"], body["reference"])
        await _write(state["pool"], variant, row)
        answer = msgspec.json.encode({"id": payment_id, "status": "created"})
        return Response(answer, status_code=202, media_type="application/json")

    @get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([accept, ready], lifespan=[lifespan], logging_config=None)


def app_from_env() -> Litestar:
    """For servers that import a factory (granian): the database from `BENCH_DATABASE_URL`."""
    variant = os.environ.get("BENCH_CEILING_VARIANT", "one-insert")
    return create_app(os.environ["BENCH_DATABASE_URL"], variant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--variant", choices=VARIANTS, default="one-insert")
    args = parser.parse_args()
    serve_asgi(create_app(args.database_url, args.variant), args.host, args.port)


if __name__ == "__main__":
    main()
