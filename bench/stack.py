"""Real processes for the benchmarks: a database of their own, gateway commands, RSS.

Every run creates a PostgreSQL database `bench_<hex>` and a queue prefix `bench-<hex>`
and removes both at the end; shared services are never stopped.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import httpx

BIN = Path(sys.executable).parent
GATEWAY = str(BIN / "gateway")
BENCH_DIR = Path(__file__).resolve().parent
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres@127.0.0.1:5432")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux `/proc`), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux `/proc`); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_children(pid: int) -> list[int]:
    """`pid` and its descendants (a granian server runs its app in a child process)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
    family, added = {pid}, True
    while added:
        children = {child for child, parent in parents.items() if parent in family}
        added = bool(children - family)
        family |= children
    return sorted(family)


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(member) for member in with_children(pid))


def tree_rss_mib(pid: int) -> float:
    total = 0.0
    for member in with_children(pid):
        with contextlib.suppress(OSError):
            total += rss_mib(member)
    return total


async def backend_pids(database: str) -> list[int]:
    """The PostgreSQL server processes serving connections to `database`."""
    connection = await asyncpg.connect(dsn("postgres"))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = $1 AND backend_type = 'client backend'",
            database,
        )
    finally:
        await connection.close()
    return [int(row[0]) for row in rows]


def pids_named(command: str) -> list[int]:
    """Processes whose command name is `command` (e.g. `beam.smp`: RabbitMQ)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == command:
                    found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds spent by named processes between `start()` and `stop()`. `database`:
    also its PostgreSQL server processes, those that appear meanwhile included."""

    def __init__(self, pids: Mapping[str, list[int]], database: str | None = None) -> None:
        self._pids = {name: list(group) for name, group in pids.items()}
        self._database = database
        self._before: dict[int, float] = {}

    async def _all(self) -> dict[str, list[int]]:
        groups = dict(self._pids)
        if self._database is not None:
            groups["postgres"] = await backend_pids(self._database)
        return groups

    async def start(self) -> None:
        groups = await self._all()
        self._before = {pid: cpu_seconds(pid) for group in groups.values() for pid in group}

    async def stop(self) -> dict[str, float]:
        spent = {}
        for name, group in (await self._all()).items():
            spent[name] = sum(cpu_seconds(pid) - self._before.get(pid, 0.0) for pid in group)
        return spent


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def wait_ready(
        self, url: str | None = None, line: str | None = None, timeout: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.output()[-3000:]}")
            if line is not None and line in self.output():
                return
            if url is not None:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=1).status_code == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready:\n{self.output()[-3000:]}")


@dataclass
class Stack:
    """The processes of one scenario; `stop_all()` ends them, newest first."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Process:
        log = self.workdir / f"{name}-{len(self.started)}.log"
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env={**os.environ, **self.env, **(env or {})},
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def gateway(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Process:
        return self.start(name, [GATEWAY, *args], env)

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [GATEWAY, *args],
            cwd=self.workdir,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"gateway {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
        self.started.clear()


@contextlib.contextmanager
def stack(workdir: Path, env: Mapping[str, str]) -> Iterator[Stack]:
    group = Stack(workdir, dict(env))
    try:
        yield group
    finally:
        group.stop_all()


def card_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def gateway_env(database: str, queue_prefix: str) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": f"postgresql+asyncpg://{PG_SERVER}/{database}",
        "GATEWAY_CARD_KEY": card_key(),
        "GATEWAY_QUEUE_PREFIX": queue_prefix,
        "GATEWAY_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        # One merchant sends everything: its rate limit (100/s by default) would be the
        # figure. Measured separately: the limiter costs one dict lookup per request.
        "GATEWAY_RATE_LIMIT_PER_S": "0",
    }


def create_merchant(group: Stack, name: str = "Bench shop") -> str:
    """Migrates the database and creates a merchant; returns its API key."""
    group.run("migrate")
    issued = json.loads(group.run("merchants", "create", name))
    return str(issued["api_key"])


def dev_api_key(output: str) -> str:
    found = re.search(r"sk_test_[A-Za-z0-9]{40}", output)
    if found is None:
        raise RuntimeError(f"gateway dev printed no API key:\n{output[-2000:]}")
    return found.group()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def dsn(database: str) -> str:
    return f"postgresql://{PG_SERVER}/{database}"


async def create_database(name: str) -> None:
    connection = await asyncpg.connect(dsn("postgres"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(dsn("postgres"))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def delete_queues(prefix: str) -> None:
    """Removes the exchanges and queues the gateway declared under `prefix`."""
    from gateway.adapters.rabbitmq_topology import Topology

    topology = Topology(prefix)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in topology.queues():
            await channel.queue_delete(queue)
        for exchange in topology.exchanges:
            await channel.exchange_delete(exchange)
