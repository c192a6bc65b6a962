"""The targets of the performance issue, checked against one run's figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Check = tuple[str, str, Callable[[Mapping[str, Any]], tuple[object, bool]]]


def config_of(cfg: object) -> dict[str, object]:
    assert dataclasses.is_dataclass(cfg)
    assert not isinstance(cfg, type)
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(cfg).items()}


def _p99_unchanged(figures: Mapping[str, Any]) -> tuple[object, bool]:
    idle = figures["probe_idle"]["p99_ms"]
    busy = figures["probe_while_draining"]["p99_ms"]
    return f"{busy} ms vs {idle} ms idle", busy <= max(1.1 * idle, idle + 2.0)


def _at_least(path: str, low: float) -> Callable[[Mapping[str, Any]], tuple[object, bool]]:
    return lambda figures: (_get(figures, path), _get(figures, path) >= low)


def _at_most(path: str, high: float) -> Callable[[Mapping[str, Any]], tuple[object, bool]]:
    return lambda figures: (_get(figures, path), _get(figures, path) <= high)


def _get(figures: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        figures = figures[part]
    return figures


def _drained(figures: Mapping[str, Any]) -> tuple[object, bool]:
    seconds = figures["final_after_last_accept_s"]
    return f"{seconds} s", seconds <= 6 and figures["unfinished"] == 0


def _memory(figures: Mapping[str, Any]) -> tuple[object, bool]:
    growth = figures["growth_pct"]
    return growth, all(value < 10 for value in growth.values())


CHECKS: tuple[Check, ...] = (
    ("accept", "accept ≥ 0.5 × ceiling req/s", _at_least("accept_to_ceiling", 0.5)),
    ("accept", "accept p99 ≤ 25 ms at 32 connections", _at_most("accept.p99_ms", 25)),
    ("e2e", "end to end ≥ 500 completed/s", _at_least("completed_per_s", 500)),
    ("e2e", "end to end: 0 lost", _at_most("lost", 0)),
    (
        "e2e-steps",
        "end to end: 500/s offered is sustained",
        _at_least("sustained_per_s", 500),
    ),
    ("e2e-steps", "end to end: offered steps, 0 lost", _at_most("lost", 0)),
    ("slowbank", "slow bank: all final ≤ 6 s after the last accept", _drained),
    ("slowbank", "slow bank: accept p99 unchanged (≤ 1.1× or +2 ms)", _p99_unchanged),
    ("growth", "growth: req/s within 10 % of empty", _at_least("rps_ratio", 0.9)),
    ("growth", "growth: p99 within 10 % of empty", _at_most("p99_ratio", 1.1)),
    ("memory", "memory growth < 10 % after warm-up", _memory),
)


def verdicts(results: Mapping[str, Any]) -> str:
    lines = [f"\n== targets ({results.get('mode')} run)"]
    for scenario, target, check in CHECKS:
        if scenario not in results:
            continue
        value, passed = check(results[scenario])
        lines.append(f"  {'PASS' if passed else 'MISS'}  {target}: {value}")
    if "explain" in results:
        scans = [k for k, v in results["explain"].items() if isinstance(v, dict) and v["seq_scan"]]
        lines.append(
            f"  {'MISS' if scans else 'PASS'}  every query uses an index: {scans or 'yes'}"
        )
    for name in ("embedded", "granian"):
        if name in results:
            accept = results[name]["accept"]
            lines.append(f"  ----  {name}: {accept['rps']} req/s, p99 {accept['p99_ms']} ms")
    return "\n".join(lines)
