"""A pytest plugin: the hostile-input suites as rows of the reliability table.

`scripts/reliability.py` runs them with `-p tests.faults.hostile_results` and renders the
file this writes (`.reliability/hostile.json`) next to the fault scenarios. One row per
suite (test file): its tests, how many failed, the checks that failed (for schemathesis,
every failure its engine reported), and how many of the requests the gateway answered
were 5xx. Those are counted by the gateway itself: its outermost ASGI middleware adds
every answer it gives, an unhandled crash included (as 500), to
`gateway_http_requests_total` in this process's registry, and every app of these suites
runs in this process.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Generator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.faults.results import RESULTS, Row, machine

HOSTILE = RESULTS.with_name("hostile.json")
SUITES = {
    "test_schemathesis.py": (
        "n",
        "Schemathesis against the OpenAPI document",
        "every operation: examples, coverage, fuzzing (100 examples each) and stateful"
        " phases, with a valid key; SQLite, in-process bank",
        "schema-valid and schema-violating requests, all checks",
    ),
    "test_http_hostile.py": (
        "o",
        "Hostile requests",
        "one request per hostile case, on SQLite and PostgreSQL",
        "deep nesting, duplicate keys, NUL bytes, huge numbers, wrong content types,"
        " oversized and lying bodies, hostile headers, ids and queries",
    ),
    "test_http_stateful.py": (
        "p",
        "HTTP state machine",
        "hypothesis sequences of request, poll, replay, key reuse and cross-merchant reads",
        "any sequence of calls, valid and invalid, by two merchants",
    ),
}
SCHEMATHESIS = "tests.integration.test_schemathesis"
HTTP_REQUESTS = "gateway_http_requests"  # the counter gateway_http_requests_total


def _answers() -> Counter[str]:
    """Every answer the gateway counted so far in this process: 'all' and '5xx'."""
    counted: Counter[str] = Counter()
    for family in REGISTRY.collect():
        if family.name != HTTP_REQUESTS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                counted["all"] += int(sample.value)
                counted["5xx"] += int(sample.value) * sample.labels["status"].startswith("5")
    return counted


class HostileResults:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.started = datetime.now(UTC)
        self.check_failures: dict[str, int] = {}

    def _row(self, item: pytest.Item) -> Row | None:
        if item.path.name not in SUITES:
            return None
        scenario, title, load, faults = SUITES[item.path.name]
        return self.rows.setdefault(item.path.name, Row(scenario, title, load, faults))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        row, before, started = self._row(item), _answers(), time.monotonic()
        module = getattr(item, "module", None)
        if row is not None and getattr(module, "__name__", "") == SCHEMATHESIS:
            self._count_schemathesis_failures(item.path.name, module)
        outcome = yield
        if row is not None:
            after = _answers()
            row.duration_s = round(row.duration_s + time.monotonic() - started, 1)
            tallies = Counter(row.measurements.get("tests", {}))
            tallies["requests answered"] += after["all"] - before["all"]
            tallies["5xx answered"] += after["5xx"] - before["5xx"]
            row.measurements["tests"] = dict(tallies)
        return outcome

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = Path(report.fspath).name
        if name not in self.rows:
            return
        tallies = Counter(self.rows[name].measurements.get("tests", {}))
        tallies["run"] += report.when == "call"
        tallies["failed"] += report.failed  # in the test, or in its setup or teardown
        self.rows[name].measurements["tests"] = dict(tallies)

    def _count_schemathesis_failures(self, name: str, module: Any) -> None:
        """Wraps the suite's engine run to count every failure it reports (should it be
        renamed, only the test's own pass or fail is known)."""
        run = getattr(module, "_run", None)
        if run is None or getattr(run, "counted", False):
            return

        def counted(schema: Any) -> Any:
            problems, phases, stop_reason = run(schema)
            self.check_failures[name] = len(problems)
            self.rows[name].measure(engine_failures=len(problems), phases=sorted(phases))
            return problems, phases, stop_reason

        counted.counted = True  # type: ignore[attr-defined]
        module._run = counted

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for name, row in self.rows.items():
            tests = row.measurements.get("tests", {})
            row.failures = self.check_failures.get(name, tests.get("failed", 0))
            row.server_errors = tests.get("5xx answered", 0)
            row.passed = tests.get("run", 0) > 0 and tests.get("failed", 0) == 0
            row.passed = row.passed and row.failures == row.server_errors == 0
            row.recorded_at = datetime.now(UTC).isoformat(timespec="seconds")
        document = {
            "started_at": self.started.isoformat(timespec="seconds"),
            "machine": machine(),
            "rows": [asdict(row) for row in sorted(self.rows.values(), key=lambda r: r.scenario)],
        }
        HOSTILE.parent.mkdir(parents=True, exist_ok=True)
        HOSTILE.write_text(json.dumps(document, indent=2) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(HostileResults(), "hostile-results")
