"""Liveness and readiness probes: no authentication, problem+json when not ready."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from litestar import Controller, get
from litestar.di import NamedDependency

from gateway.entrypoints.http import problems
from gateway.entrypoints.http.openapi import problem_responses
from gateway.entrypoints.http.schemas import Status

Check = Callable[[], Awaitable[bool]]
_log = structlog.get_logger("gateway.http")


class Readiness:
    """Named checks (database, broker…), each of which must answer True in time."""

    def __init__(self, checks: dict[str, Check], timeout_s: float = 2.0) -> None:
        self._checks = dict(checks)
        self._timeout_s = timeout_s

    async def failing(self) -> list[str]:
        results = await asyncio.gather(*(self._run(check) for check in self._checks.values()))
        return [name for name, ok in zip(self._checks, results, strict=True) if not ok]

    async def _run(self, check: Check) -> bool:
        try:
            return await asyncio.wait_for(check(), timeout=self._timeout_s)
        except Exception as error:  # a probe answers; it never raises
            _log.warning("readiness_check_failed", error=type(error).__name__)
            return False


class HealthController(Controller):
    path = "/health"
    tags = ("operations",)

    @get("/live", operation_id="getLiveness", summary="The process is running")
    async def live(self) -> Status:
        return Status("ok")

    @get(
        "/ready",
        operation_id="getReadiness",
        summary="The database (and broker, if any) answer",
        responses=problem_responses("not_ready"),
    )
    async def ready(self, readiness: NamedDependency[Readiness]) -> Status:
        failing = await readiness.failing()
        if failing:
            detail = f"not answering: {', '.join(failing)}"
            raise problems.ApiProblem("not_ready", detail, headers={"Retry-After": "5"})
        return Status("ok")
