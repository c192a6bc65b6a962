"""Starting the servers a scenario measures, and reading progress from the database."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import urllib.request
from dataclasses import dataclass

import asyncpg

from stack import AMQP_URL, BENCH_DIR, BIN, Process, Stack, dsn, free_port

SERVERS = ("uvicorn", "granian")


def _granian(app: str, port: int, *, factory: bool = True) -> list[str]:
    argv = [str(BIN / "granian"), "--interface", "asgi", "--workers", "1", "--loop", "uvloop"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning"]
    return [*argv, "--factory", app] if factory else [*argv, app]


def start_api(group: Stack, *, server: str = "uvicorn", name: str = "api") -> tuple[Process, str]:
    """`gateway api`, one process; under granian the same app from its env factory."""
    port = free_port()
    if server == "granian":
        process = group.start(name, _granian("gateway.entrypoints.http.asgi:app_from_env", port))
    else:
        process = group.gateway(name, "api", "--host", "127.0.0.1", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    process.wait_ready(f"{url}/health/ready")
    return process, url


def start_ceiling(
    group: Stack, database: str, *, server: str = "uvicorn", variant: str = "one-insert"
) -> tuple[Process, str]:
    port = free_port()
    paths = [str(BENCH_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {"BENCH_DATABASE_URL": dsn(database), "PYTHONPATH": os.pathsep.join(paths)}
    env["BENCH_CEILING_VARIANT"] = variant
    if server == "granian":
        process = group.start(variant, _granian("ceiling_app:app_from_env", port), env)
    else:
        argv = [sys.executable, str(BENCH_DIR / "ceiling_app.py"), "--port", str(port)]
        argv += ["--variant", variant]
        process = group.start(variant, [*argv, "--database-url", dsn(database)], env)
    url = f"http://127.0.0.1:{port}"
    process.wait_ready(f"{url}/health/ready")
    return process, url


@dataclass
class Pipeline:
    api: Process
    url: str
    worker: Process
    relay: Process
    bank: Process
    worker_metrics: str


def batch_sizes(
    metrics_url: str, histogram: str = "gateway_worker_batch_payments"
) -> dict[str, float]:
    """Mean payments per shared statement, by its `statement` label (`all` when the
    histogram has none): the worker's load and settle, or the API's accept."""
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        for kind in ("sum", "count"):
            name, _, value = line.rpartition(" ")
            if name == f"{histogram}_{kind}":
                found.setdefault("all", {})[kind] = float(value)
            elif name.startswith(f'{histogram}_{kind}{{statement="'):
                statement = name.split('"', 2)[1]
                found.setdefault(statement, {})[kind] = float(value)
    return {
        statement: round(values["sum"] / values["count"], 1)
        for statement, values in sorted(found.items())
        if values.get("count")
    }


def start_pipeline(
    group: Stack, *, bank_latency_ms: int, worker_concurrency: int | None = None
) -> Pipeline:
    """Bank simulator, worker, relay and API over RabbitMQ, one process each."""
    bank_port = free_port()
    bank = group.gateway(
        "bank", "bank-simulator", "--host", "127.0.0.1", "--port", str(bank_port),
        env={"GATEWAY_BANK_LATENCY_MS": str(bank_latency_ms)},
    )  # fmt: skip
    bank.wait_ready(f"http://127.0.0.1:{bank_port}/ledger")
    group.env["GATEWAY_BROKER_URL"] = AMQP_URL
    group.env["GATEWAY_BANK_URL"] = f"http://127.0.0.1:{bank_port}"
    if worker_concurrency is not None:
        group.env["GATEWAY_WORKER_CONCURRENCY"] = str(worker_concurrency)
    metrics_port = free_port()
    worker = group.gateway("worker", "worker", env={"GATEWAY_METRICS_PORT": str(metrics_port)})
    relay = group.gateway("relay", "relay")
    worker.wait_ready(line="worker_started")
    relay.wait_ready(line="relay_started")
    api, url = start_api(group)
    return Pipeline(api, url, worker, relay, bank, f"http://127.0.0.1:{metrics_port}/metrics")


class Progress:
    """Counts of jobs in the database: how many exist, how many are final."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    @classmethod
    async def open(cls, database: str) -> Progress:
        return cls(await asyncpg.connect(dsn(database)))

    async def close(self) -> None:
        await self._connection.close()

    async def counts(self) -> tuple[int, int, int]:
        """(jobs, final jobs, failed jobs)."""
        row = await self._connection.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'created'),"
            " count(*) FILTER (WHERE status = 'failed') FROM jobs"
        )
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    async def unfinished(self, job_ids: list[str]) -> int:
        return len(await self.unfinished_ids(job_ids))

    async def unfinished_ids(self, job_ids: list[str]) -> list[str]:
        """Those of `job_ids` not final yet."""
        rows = await self._connection.fetch(
            "SELECT id FROM jobs WHERE id = ANY($1::text[]) AND status = 'created'", job_ids
        )
        return [row[0] for row in rows]

    async def wait_final(self, expected: int, stall_s: float) -> tuple[int, float]:
        """Waits until `expected` jobs are final, for as long as they keep settling: it
        gives up only when none became final for `stall_s`. Returns (final, seconds
        waited), so that `expected - final` are payments the pipeline lost or stuck on,
        never ones merely still queued."""
        started = last_progress = time.perf_counter()
        final = seen = 0
        while time.perf_counter() - last_progress < stall_s:
            _, final, _ = await self.counts()
            if final >= expected:
                break
            if final > seen:
                seen, last_progress = final, time.perf_counter()
            await asyncio.sleep(0.1)
        return final, time.perf_counter() - started

    async def completion_latency_ms(self) -> dict[str, float]:
        """Accept → final, per payment: p50 / p99 / max over every final job."""
        row = await self._connection.fetchrow(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d) FROM ("
            " SELECT extract(epoch FROM completed_at - created_at) * 1000 AS d"
            " FROM jobs WHERE completed_at IS NOT NULL) AS t"
        )
        assert row is not None
        return {k: round(float(v or 0), 1) for k, v in zip(("p50", "p99", "max"), row, strict=True)}
