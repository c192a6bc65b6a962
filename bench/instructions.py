"""Instructions per `POST /payments`, counted by callgrind: a figure the machine's noise
does not move.

On a shared VM requests/s and CPU time per request move by 30 % between identical runs;
an instruction count repeats within 0.1 %. This drives the API's ASGI app in process
(no server, no load generator; a real PostgreSQL behind it) with 32 concurrent requests,
and counts only the measured window: callgrind starts with instrumentation off and the
script switches it on after the warm-up (`callgrind_control`). `--ceiling` counts the
ceiling app (`bench/ceiling_app.py`) the same way.

    .venv/bin/python bench/instructions.py               # the API, 640 requests
    .venv/bin/python bench/instructions.py --ceiling     # the ceiling

Needs valgrind (`callgrind`); takes about 30 s. What it leaves out is the same for both
apps: the server (uvicorn and httptools) and the kernel's work.
"""

from __future__ import annotations

import argparse
import asyncio
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
from gateway.domain.commands import CreateMerchant
from gateway.entrypoints.http.app import create_app
from gateway.entrypoints.logging import configure_logging
from gateway.entrypoints.serve import tune_garbage_collection

CONCURRENCY = 32
WARM_UP = 10  # requests per concurrent client before counting starts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--ceiling", action="store_true", help="count the ceiling app")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with open(os.devnull, "w") as log:  # the access log is written, to nowhere
            uvloop.run(_drive(args.requests, log, ceiling=args.ceiling))
        return 0
    return _count(args.requests, ceiling=args.ceiling)


def _count(requests: int, *, ceiling: bool) -> int:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        argv += [f"--callgrind-out-file={output}", sys.executable, __file__, "--child"]
        argv += ["--requests", str(requests)] + (["--ceiling"] if ceiling else [])
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        totals = [line for line in _lines(output) if line.startswith("totals:")]
        if done.returncode != 0 or not totals:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
    measured = requests // CONCURRENCY * CONCURRENCY
    instructions = int(totals[0].split()[1])
    app = "ceiling" if ceiling else "api"
    print(f"{app}: {instructions:,} instructions for {measured} requests")
    print(f"{app}: {instructions / measured:,.0f} instructions per request")
    return 0


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def _drive(requests: int, log: TextIO, *, ceiling: bool) -> None:
    database = stack.unique("bench_instructions_")
    await stack.create_database(database)
    try:
        os.environ.update(stack.gateway_env(database, stack.unique("bench-instructions-")))
        os.environ["GATEWAY_LOG_LEVEL"] = "INFO"
        os.environ["GATEWAY_API_KEY_CACHE_S"] = "5"  # as long as it goes: few lookups
        await _measure(database, requests, log, ceiling=ceiling)
    finally:
        await stack.drop_database(database)


async def _measure(database: str, requests: int, log: TextIO, *, ceiling: bool) -> None:
    configure_logging("INFO", log)
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
