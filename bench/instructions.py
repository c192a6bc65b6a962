"""Instructions per `POST /payments`, counted by callgrind: a figure the machine's noise
does not move.

On a shared VM requests/s and CPU time per request move by 30 % between identical runs;
an instruction count repeats within 0.1 %. This drives the API's ASGI app in process
(no server, no load generator; a real PostgreSQL behind it) with 32 concurrent requests,
and counts only the measured window: callgrind starts with instrumentation off and the
script switches it on after the warm-up (`callgrind_control`). `--ceiling` counts the
ceiling app (`bench/ceiling_app.py`) the same way. `--worker` counts the worker's
`MakePayment` handler the same way (64 at a time: load, bank call, settle) on payments
accepted beforehand, with the bank simulator in a process of its own (not counted); the
RabbitMQ delivery and ack around it are left out.

    .venv/bin/python bench/instructions.py               # the API, 640 requests
    .venv/bin/python bench/instructions.py --ceiling     # the ceiling
    .venv/bin/python bench/instructions.py --worker      # the worker's handler
    .venv/bin/python bench/instructions.py --log-level WARNING  # without the access log

Needs valgrind (`callgrind`); takes about 30 s. What it leaves out is the same for both
apps: the server (uvicorn and httptools) and the kernel's work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import uvloop

import ceiling_app
import payloads
import stack
from gateway import bootstrap
from gateway.config import Settings
from gateway.domain.commands import CreateMerchant, MakePayment, RequestPayment
from gateway.domain.result import Ok
from gateway.entrypoints.http.app import create_app
from gateway.entrypoints.logging import configure_logging
from gateway.entrypoints.serve import tune_garbage_collection

CONCURRENCY = 32
WARM_UP = 10  # requests per concurrent client before counting starts
WORKER_CONCURRENCY = 64
LOG_LEVEL = "BENCH_INSTRUCTIONS_LOG_LEVEL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--ceiling", action="store_true", help="count the ceiling app")
    parser.add_argument("--worker", action="store_true", help="count the MakePayment handler")
    parser.add_argument(
        "--log-level", default="INFO", help="WARNING leaves the access log line out (its cost)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.child:
        os.environ[LOG_LEVEL] = args.log_level  # the child, under callgrind, reads it
    what = "worker" if args.worker else "ceiling" if args.ceiling else "api"
    if args.child:
        with open(os.devnull, "w") as log:  # the access log is written, to nowhere
            uvloop.run(_drive(args.requests, log, what))
        return 0
    return _count(args.requests, what)


def _count(requests: int, what: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        argv += [f"--callgrind-out-file={output}", sys.executable, __file__, "--child"]
        argv += ["--requests", str(requests)] + ([] if what == "api" else [f"--{what}"])
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        totals = [line for line in _lines(output) if line.startswith("totals:")]
        if done.returncode != 0 or not totals:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
    measured = requests if what == "worker" else requests // CONCURRENCY * CONCURRENCY
    instructions = int(totals[0].split()[1])
    unit = "payment" if what == "worker" else "request"
    print(f"{what}: {instructions:,} instructions for {measured} {unit}s")
    print(f"{what}: {instructions / measured:,.0f} instructions per {unit}")
    return 0


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def _drive(requests: int, log: TextIO, what: str) -> None:
    database = stack.unique("bench_instructions_")
    await stack.create_database(database)
    bank: asyncio.subprocess.Process | None = None
    try:
        os.environ.update(stack.gateway_env(database, stack.unique("bench-instructions-")))
        os.environ["GATEWAY_LOG_LEVEL"] = "INFO"
        os.environ["GATEWAY_API_KEY_CACHE_S"] = "5"  # as long as it goes: few lookups
        if what == "worker":
            port = stack.free_port()
            argv = [str(stack.BIN / "gateway"), "bank-simulator", "--port", str(port)]
            bank = await asyncio.create_subprocess_exec(
                *argv,
                "--host",
                "127.0.0.1",
                env={**os.environ, "GATEWAY_BANK_LATENCY_MS": "0"},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            os.environ["GATEWAY_BANK_URL"] = f"http://127.0.0.1:{port}"
            await _measure_worker(requests, log, port)
        else:
            await _measure(database, requests, log, ceiling=what == "ceiling")
    finally:
        if bank is not None:
            bank.kill()
            await bank.wait()
        await stack.drop_database(database)


async def _measure_worker(payments: int, log: TextIO, bank_port: int) -> None:
    configure_logging(os.environ.get(LOG_LEVEL, "INFO"), log)
    container = bootstrap.build(Settings.from_env())
    await bootstrap.migrate_database(container)
    await _bank_ready(bank_port)
    mediator = container.mediator()
    issued = await mediator.send(CreateMerchant("Instructions"))
    make = payloads.payments(issued.api_key.value)
    warm_up = WORKER_CONCURRENCY * WARM_UP
    commands = []
    for n in range(warm_up + payments):
        request = make(n)
        key = request.headers["Idempotency-Key"]
        accepted = await mediator.send(
            RequestPayment(issued.merchant_id, key, json.loads(request.body))
        )
        if not isinstance(accepted, Ok):
            raise RuntimeError(f"RequestPayment answered {accepted}")
        job = accepted.value.job
        commands.append(MakePayment(job.payment_id, job.id, job.merchant_id))
    tune_garbage_collection()
    await _handle(mediator, commands[:warm_up])
    await _callgrind("on")
    await _handle(mediator, commands[warm_up:])
    await _callgrind("off")
    await container.direct_pool().close()


async def _handle(mediator: Any, commands: list[MakePayment]) -> None:
    pending = iter(commands)

    async def one_at_a_time() -> None:
        for command in pending:
            if not isinstance(await mediator.send(command), Ok):
                raise RuntimeError(f"MakePayment failed: {command}")

    await asyncio.gather(*(one_at_a_time() for _ in range(WORKER_CONCURRENCY)))


async def _bank_ready(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("the bank simulator did not start")


async def _measure(database: str, requests: int, log: TextIO, *, ceiling: bool) -> None:
    configure_logging(os.environ.get(LOG_LEVEL, "INFO"), log)
    container = bootstrap.build(Settings.from_env())
    await bootstrap.migrate_database(container)
    issued = await container.mediator().send(CreateMerchant("Instructions"))
    app: Any = create_app(container)
    if ceiling:
        app = ceiling_app.create_app(stack.dsn(database))
    make = payloads.payments(issued.api_key.value)
    async with app.lifespan():
        tune_garbage_collection()
        await _clients(app, make, 0, WARM_UP)
        await _callgrind("on")
        await _clients(app, make, CONCURRENCY * WARM_UP, requests // CONCURRENCY)
        await _callgrind("off")


async def _clients(app: Any, make: Any, start: int, each: int) -> None:
    async def client(number: int) -> None:
        for n in range(each):
            status = await _request(app, make(start + number * each + n))
            if status != 202:
                raise RuntimeError(f"POST /payments answered {status}")

    await asyncio.gather(*(client(number) for number in range(CONCURRENCY)))


async def _request(app: Any, request: Any) -> int:
    headers = [(b"host", b"bench"), (b"content-length", str(len(request.body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in request.headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _callgrind(state: str) -> None:
    control = await asyncio.create_subprocess_exec(
        "callgrind_control", "-i", state, str(os.getpid()), stdout=asyncio.subprocess.DEVNULL
    )
    await control.wait()


if __name__ == "__main__":
    sys.exit(main())
