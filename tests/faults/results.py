"""The fault suite's results: one row per scenario, written to `.reliability/results.json`.

`scripts/reliability.py` turns the file into `docs/reliability.md`. A row is filled in by
its test and marked passed only when the test itself passed.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PSQL = ("psql", "-h", "127.0.0.1", "-U", "postgres")
RESULTS = Path(__file__).resolve().parents[2] / ".reliability" / "results.json"


@dataclass
class Row:
    scenario: str
    title: str
    load: str
    faults: str
    accepted: int = 0
    final: int = 0
    lost: int = 0
    charged_twice: int = 0
    card_data_found: int = 0
    failures: int | None = None  # failed checks: hostile-input suites only
    server_errors: int | None = None  # 5xx answered: hostile-input suites only
    duration_s: float = 0.0
    passed: bool = False
    measurements: dict[str, Any] = field(default_factory=dict)
    recorded_at: str = ""

    def measure(self, **values: Any) -> None:
        self.measurements.update(values)


@dataclass
class Recorder:
    path: Path = RESULTS
    rows: list[Row] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    _clock: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        """Rows of scenarios not run this time are kept from the previous run."""
        try:
            previous = json.loads(self.path.read_text())["rows"]
            self.rows = [Row(**row) for row in previous]
        except (OSError, ValueError, KeyError, TypeError):
            self.rows = []

    def add(self, row: Row) -> None:
        row.recorded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.rows = [r for r in self.rows if r.scenario != row.scenario] + [row]
        self.write()

    def write(self) -> None:
        document = {
            "started_at": self.started.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_time_s": round(time.monotonic() - self._clock, 1),
            "machine": machine(),
            "rows": [asdict(row) for row in sorted(self.rows, key=lambda r: r.scenario)],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(document, indent=2) + "\n")


def machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "os": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "postgresql": _first_line([*PSQL, "-tAc", "show server_version"]),
        "rabbitmq": _first_line(["rabbitmqctl", "version"]),
    }


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if lines else "unknown"
