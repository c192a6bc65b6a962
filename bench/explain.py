"""EXPLAIN ANALYZE of every query the API, the relay, the worker and the sweeps make, on a database
holding `growth_rows` payments: none may scan a big table (`api_keys` and `card_data`
stay small, and PostgreSQL rightly reads a few pages of those in full).

The statements mirror `adapters/repository.py`, `views.py` and `outbox.py`; add a line
here whenever a new query goes on a hot path or a sweep. The worker's two statements on
PostgreSQL are taken from `adapters/postgres_processing.py` itself and explained as
`EXECUTE` of a prepared statement (the settle runs on a settled payment, so its `UPDATE`
finds the row and leaves it: the plan is the same, nothing changes).
"""

from __future__ import annotations

import re

import asyncpg

import stack
from gateway.adapters.postgres_processing import LOAD_SQL, SETTLE_SQL
from scenarios import Config, fresh
from seed import seed_payments


def _parameters(sql: str) -> int:
    return len(set(re.findall(r"\$\d+", sql)))


BIG = 10_000  # a sequential scan of a table this small is the planner's right choice
P = "'pay_0" + "0" * 24 + "1'"  # a stored payment id
J = "'job_0" + "0" * 24 + "1'"  # its job
# A query, or a prepared statement and the arguments of its `EXECUTE`.
QUERIES: dict[str, str | tuple[str, str]] = {
    "auth: api key by prefix": "SELECT * FROM api_keys WHERE prefix = 'sk_test_x'",
    "accept: idempotency record": (
        "SELECT * FROM idempotency_keys WHERE merchant_id = $M AND key = 'seed-77'"
    ),
    "worker: payment, job, card, pending row, endpoints (a batch of one)": (
        LOAD_SQL,
        f"ARRAY[{P}], ARRAY[{J}]",
    ),
    "worker: settle in one statement (a batch of one)": (
        SETTLE_SQL,
        f"ARRAY[{P}], ARRAY[$M], ARRAY[{J}], ARRAY[''], ARRAY['authorized'], ARRAY[NULL],"
        " ARRAY['A1B2C3'], ARRAY[NULL], ARRAY[now()], ARRAY['completed'], ARRAY[NULL],"
        " ARRAY[NULL], ARRAY[now()], " + ", ".join(["'{}'"] * (_parameters(SETTLE_SQL) - 13)),
    ),
    "worker (fallback): payment by id, for update": (
        f"SELECT * FROM payments WHERE id = {P} FOR UPDATE"
    ),
    "worker: card data": f"SELECT sealed FROM card_data WHERE payment_id = {P}",
    "worker/poll: job by id": f"SELECT * FROM jobs WHERE id = {J}",
    "job by payment": f"SELECT * FROM jobs WHERE payment_id = {P}",
    "list: newest first": (
        "SELECT * FROM payments WHERE merchant_id = $M ORDER BY id DESC LIMIT 21"
    ),
    "list: by status": (
        "SELECT * FROM payments WHERE merchant_id = $M AND status = 'declined'"
        " ORDER BY id DESC LIMIT 21"
    ),
    "list: by reference": (
        "SELECT * FROM payments WHERE merchant_id = $M AND reference = 'SEED-5'"
        " ORDER BY id DESC LIMIT 21"
    ),
    "list: page after": (
        f"SELECT * FROM payments WHERE merchant_id = $M AND id < {P} ORDER BY id DESC LIMIT 21"
    ),
    "relay: claim unsent": (
        "SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED"
    ),
    "relay: backlog gauge": ("SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL"),
    "relay: purge sent an hour ago": (
        "DELETE FROM outbox WHERE id < 'msg_0" + "0" * 24 + "1' AND sent_at IS NOT NULL"
    ),
    # The tables below are empty after seeding: these plans show the index chosen for an
    # equality or range on it, not its speed at volume.
    "sweep: pending payments due": (
        "SELECT * FROM pending_payments WHERE next_lookup_at <= now()"
        " ORDER BY next_lookup_at LIMIT 100 FOR UPDATE SKIP LOCKED"
    ),
    "bank callback: by event id": "SELECT * FROM bank_callbacks WHERE event_id = 'evt_1'",
    "events: newest first by type": (
        "SELECT * FROM events WHERE merchant_id = $M AND type = 'payment.authorized'"
        " ORDER BY id DESC LIMIT 21"
    ),
    "webhooks: deliveries due": (
        "SELECT id, attempts FROM webhook_deliveries WHERE status = 'pending'"
        " AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 100"
    ),
}


async def explain(cfg: Config) -> dict[str, object]:
    async with fresh(cfg, "explain") as env:
        await seed_payments(stack.dsn(env.database), cfg.growth_rows)
        connection = await asyncpg.connect(stack.dsn(env.database))
        try:
            merchant = await connection.fetchval("SELECT id FROM merchants LIMIT 1")
            plans: dict[str, object] = {"stored_payments": cfg.growth_rows}
            for name, query in QUERIES.items():
                plans[name] = await _plan(connection, query, f"'{merchant}'")
        finally:
            await connection.close()
        return plans


async def _plan(
    connection: asyncpg.Connection, query: str | tuple[str, str], merchant: str
) -> dict[str, object]:
    prepared = isinstance(query, tuple)
    async with connection.transaction():
        if isinstance(query, tuple):
            statement, arguments = query
            await connection.execute(f"PREPARE explained AS {statement}")
            query = f"EXECUTE explained({arguments})"
        query = query.replace("$M", merchant)
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) {query}")
        plan = [str(row[0]) for row in rows]
        await connection.execute("ROLLBACK; BEGIN")  # FOR UPDATE took locks: let them go
    if prepared:  # it outlives the transaction
        await connection.execute("DEALLOCATE explained")
    scans = [line.strip().removeprefix("->  ") for line in plan if "Scan" in line]
    time_line = next((line for line in plan if line.startswith("Execution Time")), "")
    big = [scan for scan in scans if "Seq Scan" in scan and await _rows(connection, scan) > BIG]
    return {
        "scans": scans,
        "seq_scan": bool(big),
        "execution": time_line.removeprefix("Execution Time: "),
    }


async def _rows(connection: asyncpg.Connection, scan: str) -> float:
    """The planner's row count of the table a `Seq Scan on <table>` line reads."""
    table = scan.split(" on ", 1)[1].split()[0]
    rows = await connection.fetchval("SELECT reltuples FROM pg_class WHERE relname = $1", table)
    return float(rows or 0)
