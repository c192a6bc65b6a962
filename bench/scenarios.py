"""The scenarios of `bench/run.py`. Each returns a dict of figures measured in this run."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

import loadgen
import payloads
import pipeline
import profiling
import stack
from ceiling_app import VARIANTS
from seed import seed_payments


@dataclass(frozen=True)
class Config:
    quick: bool
    workdir: Path
    connections: int = 32
    client: str = "raw"
    warmup_s: float = 3.0
    measure_s: float = 15.0
    e2e_s: float = 60.0
    slow_payments: int = 2000
    slow_rounds: int = 3
    growth_rows: int = 1_000_000
    memory_payments: int = 100_000
    worker_concurrency: int | None = None
    results: Path = Path(__file__).resolve().parent / "results"

    @classmethod
    def of(cls, quick: bool, workdir: Path, **overrides: object) -> Config:
        if quick:
            sizes = {"warmup_s": 2.0, "measure_s": 8.0, "e2e_s": 10.0, "slow_rounds": 1}
            sizes |= {"growth_rows": 20_000, "memory_payments": 10_000}
        else:
            sizes = {}
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(quick=quick, workdir=workdir, **(sizes | given))  # type: ignore[arg-type]


@dataclass
class Fresh:
    group: stack.Stack
    database: str
    api_key: str


@contextlib.asynccontextmanager
async def fresh(cfg: Config, name: str) -> AsyncIterator[Fresh]:
    """A database and queue prefix of the scenario's own, migrated, with one merchant."""
    database, prefix = stack.unique(f"bench_{name}_"), stack.unique(f"bench-{name}-")
    workdir = cfg.workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    await stack.create_database(database)
    try:
        with stack.stack(workdir, stack.gateway_env(database, prefix)) as group:
            yield Fresh(group, database, stack.create_merchant(group))
    finally:
        await stack.drop_database(database)
        with contextlib.suppress(Exception):
            await stack.delete_queues(prefix)


async def measure(
    cfg: Config,
    url: str,
    make: loadgen.MakeRequest,
    server: stack.Process | None = None,
    database: str | None = None,
) -> dict[str, object]:
    """Warm-up (not counted), then the measured window at `cfg.connections`. With `server`
    (and `database`): the CPU time that process (and the database's server processes)
    spent per request in the window, a figure other load on the machine barely moves."""
    await loadgen.run_load(
        url, make, connections=cfg.connections, seconds=cfg.warmup_s, client=cfg.client
    )
    pids = await stack.backend_pids(database) if database else []
    cpu = _cpu(server, pids)
    offset = 10_000_000  # the warm-up's idempotency keys are not sent again
    result = await loadgen.run_load(
        url,
        lambda n: make(offset + n),
        connections=cfg.connections,
        seconds=cfg.measure_s,
        client=cfg.client,
    )
    figures = result.summary()
    if server is not None and result.count:
        spent = [after - before for before, after in zip(cpu, _cpu(server, pids), strict=True)]
        figures["server_cpu_ms_per_request"] = round(1000 * spent[0] / result.count, 3)
        figures["server_cpu_busy"] = round(spent[0] / result.seconds, 2)
        if pids:
            figures["db_cpu_ms_per_request"] = round(1000 * spent[1] / result.count, 3)
    return figures


def _cpu(server: stack.Process | None, pids: list[int]) -> tuple[float, float]:
    if server is None:
        return 0.0, 0.0
    return stack.tree_cpu_seconds(server.pid), sum(stack.cpu_seconds(pid) for pid in pids)


def ratio(a: dict[str, object], b: dict[str, object], key: str = "rps") -> float:
    x, y = a[key], b[key]
    assert isinstance(x, float | int)
    assert isinstance(y, float | int)
    return round(x / y, 3) if y else float("nan")


async def ceiling_and_accept(cfg: Config, server: str = "uvicorn") -> dict[str, object]:
    """The ceiling app and `POST /payments` on the API, one process each, same server,
    their windows in turn (`alternating`); each side's figures are its windows' mean."""
    async with fresh(cfg, f"accept_{server}") as env:
        ceiling, ceiling_url = pipeline.start_ceiling(env.group, env.database, server=server)
        api, url = pipeline.start_api(env.group, server=server)
        windows = await alternating(
            {
                "ceiling": lambda: measure(
                    cfg, ceiling_url, payloads.payments("unused"), ceiling, env.database
                ),
                "accept": lambda: measure(
                    cfg, url, payloads.payments(env.api_key), api, env.database
                ),
            }
        )
        ceiling_figures, accept = _mean(windows["ceiling"]), _mean(windows["accept"])
        sizes = pipeline.batch_sizes(f"{url}/metrics", "gateway_accept_batch_payments")
        accept["payments_per_statement"] = sizes.get("all")  # warm-ups included
        figures: dict[str, object] = {"server": server, "ceiling": ceiling_figures}
        figures |= {"accept": accept, "accept_to_ceiling": ratio(accept, ceiling_figures)}
        figures["windows"] = windows
        figures["api_rss_mib"] = round(stack.tree_rss_mib(api.pid), 1)
        return figures


async def alternating(
    sides: dict[str, Callable[[], Awaitable[dict[str, object]]]], rounds: int = 2
) -> dict[str, list[dict[str, object]]]:
    """Each side's measured window in turn, the order reversed every other round (A B,
    B A, …). This VM's speed drifts by 10-20 % within minutes: measured one after the
    other, the side that ran in the faster minutes would win by that much."""
    windows: dict[str, list[dict[str, object]]] = {name: [] for name in sides}
    names = list(sides)
    for n in range(rounds):
        for name in names if n % 2 == 0 else names[::-1]:
            windows[name].append(await sides[name]())
    return windows


async def ladder(cfg: Config) -> dict[str, object]:
    """What the database round trips cost: the ceiling's variants, then the real accept."""
    figures: dict[str, object] = {}
    async with fresh(cfg, "ladder") as env:
        for variant in VARIANTS:
            process, url = pipeline.start_ceiling(env.group, env.database, variant=variant)
            figures[variant] = await measure(
                cfg, url, payloads.payments("unused"), process, env.database
            )
            process.stop()
        api, url = pipeline.start_api(env.group)
        figures["accept"] = await measure(
            cfg, url, payloads.payments(env.api_key), api, env.database
        )
    base = figures["one-insert"]
    assert isinstance(base, dict)
    for name in (*VARIANTS[1:], "accept"):
        step = figures[name]
        assert isinstance(step, dict)
        figures[f"{name}_to_ceiling"] = ratio(step, base)
    return figures


async def profile_accept(cfg: Config) -> dict[str, object]:
    """py-spy on the API process while `POST /payments` runs at full load."""
    async with fresh(cfg, "profile") as env:
        api, url = pipeline.start_api(env.group)
        make = payloads.payments(env.api_key)
        await loadgen.run_load(url, make, connections=cfg.connections, seconds=cfg.warmup_s)
        output = cfg.results / "accept-profile.collapsed.txt"
        recorder = profiling.record(api.pid, cfg.measure_s, output)
        result = await loadgen.run_load(
            url, lambda n: make(10_000_000 + n), connections=cfg.connections,
            seconds=cfg.measure_s, client=cfg.client,
        )  # fmt: skip
        await asyncio.to_thread(recorder.wait, 60)
        return {"load": result.summary(), **profiling.summarize(output)}


async def embedded(cfg: Config) -> dict[str, object]:
    """`gateway dev` (SQLite, in-process delivery and bank), as `make run` starts it."""
    workdir = cfg.workdir / "embedded"
    workdir.mkdir(parents=True, exist_ok=True)
    with stack.stack(
        workdir, {"GATEWAY_LOG_LEVEL": "INFO", "GATEWAY_RATE_LIMIT_PER_S": "0"}
    ) as group:
        port = stack.free_port()
        dev = group.gateway("dev", "dev", "--port", str(port))
        dev.wait_ready(f"http://127.0.0.1:{port}/health/ready")
        url = f"http://127.0.0.1:{port}"
        make = payloads.payments(stack.dev_api_key(dev.output()))
        figures = await measure(cfg, url, make, dev)
        return {"accept": figures, "rss_mib": round(stack.rss_mib(dev.pid), 1)}


async def growth(cfg: Config) -> dict[str, object]:
    """Accept on an empty database and on one with `growth_rows` payments stored, an API
    process on each, their windows in turn (`alternating`)."""
    async with fresh(cfg, "growth_empty") as empty_env, fresh(cfg, "growth") as env:
        started = time.perf_counter()
        await seed_payments(stack.dsn(env.database), cfg.growth_rows)
        seeded_s = round(time.perf_counter() - started, 1)
        sides = {"empty": empty_env, "stored": env}
        apis = {name: pipeline.start_api(side.group) for name, side in sides.items()}

        def window(name: str) -> Callable[[], Awaitable[dict[str, object]]]:
            (api, url), side = apis[name], sides[name]
            return lambda: measure(cfg, url, payloads.payments(side.api_key), api, side.database)

        windows = await alternating({name: window(name) for name in sides})
        empty, stored = _mean(windows["empty"]), _mean(windows["stored"])
        return {
            "stored_payments": cfg.growth_rows,
            "seed_seconds": seeded_s,
            "empty": empty,
            "stored": stored,
            "windows": windows,
            "rps_ratio": ratio(stored, empty),
            "p99_ratio": ratio(stored, empty, "p99_ms"),
        }


def _mean(windows: list[dict[str, object]]) -> dict[str, object]:
    """The windows' mean of each figure they all have as a number."""
    keys = [k for k, v in windows[0].items() if isinstance(v, int | float)]
    means: dict[str, object] = {}
    for key in keys:
        values = [w[key] for w in windows]
        if all(isinstance(v, int | float) for v in values):
            means[key] = round(sum(values) / len(values), 3)  # type: ignore[arg-type]
    return means


async def table_sizes(database: str) -> dict[str, str]:
    connection = await asyncpg.connect(stack.dsn(database))
    try:
        rows = await connection.fetch(
            "SELECT relname, pg_size_pretty(pg_total_relation_size(relid))"
            " FROM pg_catalog.pg_statio_user_tables ORDER BY relname"
        )
    finally:
        await connection.close()
    return {row[0]: row[1] for row in rows}
