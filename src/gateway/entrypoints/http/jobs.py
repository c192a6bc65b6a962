"""/jobs: the merchant's handle on the asynchronous processing of a payment."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.application.authentication import Principal
from gateway.application.mediator import Mediator
from gateway.application.queries import GetJob
from gateway.domain.result import Err, Ok
from gateway.entrypoints.http import problems
from gateway.entrypoints.http.openapi import COMMON_CODES, problem_responses
from gateway.entrypoints.http.schemas import JobBody


class JobController(Controller):
    path = "/jobs"
    tags = ("jobs",)

    @get(
        "/{job_id:str}",
        operation_id="getJob",
        summary="Read a job: created, then completed or failed",
        responses=problem_responses(*COMMON_CODES, "validation_error", "not_found"),
    )
    async def get_job(
        self,
        job_id: FromPath[str],
        mediator: NamedDependency[Mediator],
        principal: NamedDependency[Principal],
    ) -> JobBody:
        match await mediator.ask(GetJob(principal.merchant_id, job_id)):
            case Ok(view):
                return JobBody.of_view(view)
            case Err(error):
                raise problems.from_error(error)
