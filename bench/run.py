"""`make bench`: the gateway's performance, measured against a ceiling in the same run.

    .venv/bin/python bench/run.py                      # every scenario, full size
    .venv/bin/python bench/run.py --quick              # short runs, small data (minutes)
    .venv/bin/python bench/run.py accept growth        # only these scenarios

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) and RabbitMQ at 127.0.0.1:5672
(`make services`). Each scenario makes a database and queues of its own and removes
them. Prints the figures and writes them as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

import explain
import flows
import report
import scenarios
from scenarios import Config

Scenario = Callable[[Config], Awaitable[dict[str, object]]]

SCENARIOS: dict[str, Scenario] = {
    "accept": scenarios.ceiling_and_accept,
    "granian": lambda cfg: scenarios.ceiling_and_accept(cfg, server="granian"),
    "e2e": flows.end_to_end,
    "slowbank": flows.slow_bank,
    "growth": scenarios.growth,
    "memory": flows.memory,
    "embedded": scenarios.embedded,
    "profile": scenarios.profile_accept,
    "ladder": scenarios.ladder,
    "profile-pipeline": flows.profile_pipeline,
    "e2e-steps": flows.end_to_end_steps,
    "explain": explain.explain,
}
DEFAULT = ("accept", "e2e", "e2e-steps", "slowbank", "growth", "memory", "embedded", "explain")
RESULTS = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: {' '.join(DEFAULT)})",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="short windows, small data")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--seconds", type=float, help="measured window of accept scenarios")
    parser.add_argument("--e2e-seconds", type=float)
    parser.add_argument("--growth-rows", type=int)
    parser.add_argument("--memory-payments", type=int)
    parser.add_argument("--worker-concurrency", type=int, help="GATEWAY_WORKER_CONCURRENCY")
    parser.add_argument("--keep-logs", type=Path, help="keep the processes' logs in this folder")
    return parser


def machine() -> dict[str, object]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


async def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = args.scenarios or list(DEFAULT)
    if unknown := [name for name in chosen if name not in SCENARIOS]:
        _parser().error(f"unknown {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    with contextlib.ExitStack() as stack:
        workdir = args.keep_logs or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="gateway-bench-")
        )
        cfg = Config.of(
            args.quick, Path(workdir), connections=args.connections, client=args.client,
            measure_s=args.seconds, e2e_s=args.e2e_seconds, growth_rows=args.growth_rows,
            memory_payments=args.memory_payments, worker_concurrency=args.worker_concurrency,
        )  # fmt: skip
        results: dict[str, object] = {"mode": "quick" if args.quick else "full"}
        results |= {"machine": machine(), "config": report.config_of(cfg)}
        RESULTS.mkdir(exist_ok=True)  # the profile scenarios write into it as they run
        for name in chosen:
            print(f"\n== {name} ...", flush=True)
            started = time.perf_counter()
            figures = await SCENARIOS[name](cfg)
            figures["scenario_seconds"] = round(time.perf_counter() - started, 1)
            results[name] = figures
            print(json.dumps(figures, indent=2), flush=True)
    print(report.verdicts(results))
    path = RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{results['mode']}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
