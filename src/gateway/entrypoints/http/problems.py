"""RFC 9457 problem details for every error, whatever produced it.

Handlers raise `ApiProblem` (built by `from_error` from the application's `Err`s); the
exception handlers here also turn framework exceptions and unexpected errors into the
same shape, with the request id of the `X-Request-Id` header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError, InterfaceError, InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway.domain.errors import (
    FieldError,
    IdempotencyKeyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    NotFound,
    ValidationFailed,
)
from gateway.entrypoints.http.middleware import request_id_of
from gateway.entrypoints.http.schemas import FieldProblem, Problem

PROBLEM_JSON = "application/problem+json"

TITLES: Mapping[str, tuple[int, str]] = {
    "validation_error": (400, "The request is invalid"),
    "malformed_json": (400, "The request body is not valid JSON"),
    "idempotency_key_missing": (400, "The Idempotency-Key header is missing"),
    "idempotency_key_invalid": (400, "The Idempotency-Key header is invalid"),
    "authentication_required": (401, "Authentication is required"),
    "signature_invalid": (401, "The signature is missing, wrong or too old"),
    "not_found": (404, "The resource does not exist"),
    "method_not_allowed": (405, "The method is not allowed for this resource"),
    "idempotency_key_in_progress": (409, "A request with this Idempotency-Key is in progress"),
    "payment_already_final": (409, "The payment is already final with another outcome"),
    "payload_too_large": (413, "The request body is too large"),
    "rate_limited": (429, "Too many requests"),
    "idempotency_key_reused": (422, "The Idempotency-Key was used for another request"),
    "url_invalid": (422, "The URL is not an absolute http or https URL"),
    "url_not_allowed": (422, "The URL is not allowed as a webhook endpoint"),
    "internal_error": (500, "Internal server error"),
    "not_ready": (503, "The service is not ready"),
    "service_unavailable": (503, "The service is temporarily unavailable"),
}
_BY_STATUS: Mapping[int, str] = {
    400: "validation_error",
    401: "authentication_required",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
_DETAILS: Mapping[int, str] = {
    404: "no such resource",
    405: "this resource does not support that method",
    413: "the request body is larger than the limit",
}

_log = structlog.get_logger("gateway.http")


class ApiProblem(Exception):
    """An error answer; `code` selects status and title."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(code)
        default_status, self.title = TITLES.get(code, (500, HTTPStatus(status or 500).phrase))
        self.code, self.detail, self.errors = code, detail, tuple(errors)
        self.status = status or default_status
        self.headers = dict(headers or {})


def unauthenticated() -> ApiProblem:
    detail = "send a valid API key as 'Authorization: Bearer <key>'"
    return ApiProblem("authentication_required", detail, headers={"WWW-Authenticate": "Bearer"})


def validation_failed(errors: Sequence[FieldError]) -> ApiProblem:
    count = len(errors)
    detail = f"{count} field{'s are' if count != 1 else ' is'} invalid"
    return ApiProblem("validation_error", detail, errors=errors)


def from_error(
    error: ValidationFailed
    | IdempotencyKeyInvalid
    | IdempotencyKeyReused
    | IdempotencyKeyInProgress
    | NotFound,
) -> ApiProblem:
    match error:
        case ValidationFailed(errors):
            return validation_failed(errors)
        case IdempotencyKeyInvalid(message):
            return ApiProblem("idempotency_key_invalid", f"Idempotency-Key {message}")
        case IdempotencyKeyReused():
            detail = "this key was already used with a different request body"
            return ApiProblem("idempotency_key_reused", detail)
        case IdempotencyKeyInProgress():
            detail = "a request with this key is still being answered; retry shortly"
            return ApiProblem("idempotency_key_in_progress", detail, headers={"Retry-After": "1"})
        case NotFound(resource):
            return ApiProblem("not_found", f"no such {resource}")


def render(request_id: str, problem: ApiProblem) -> Response[bytes]:
    body = Problem(
        type=f"/errors/{problem.code}",
        title=problem.title,
        status=problem.status,
        code=problem.code,
        detail=problem.detail,
        request_id=request_id,
        errors=[FieldProblem(e.param, e.code, e.message) for e in problem.errors] or None,
    )
    return Response(
        msgspec.json.encode(body),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _api_problem(request: Request[Any, Any, Any], exc: ApiProblem) -> Response[bytes]:
    return render(request_id_of(request.scope), exc)


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if exc.status_code >= 500:
        return _unexpected(request, exc)
    return render(request_id_of(request.scope), _from_framework(exc))


def _from_framework(exc: HTTPException) -> ApiProblem:
    """Litestar's own 4xx answers (router 404/405, body limit, its validation)."""
    status = exc.status_code
    if status == 401:
        return unauthenticated()
    if isinstance(exc, ValidationException):
        return validation_failed(_framework_errors(exc))
    code = _BY_STATUS.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    detail = _DETAILS.get(status, exc.detail)
    return ApiProblem(code, detail, headers=exc.headers, status=status)


def _framework_errors(exc: ValidationException) -> list[FieldError]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        FieldError(str(item.get("key", "request")), "validation_error", str(item.get("message")))
        for item in extra
        if isinstance(item, dict)
    ]
    return errors or [FieldError("request", "validation_error", exc.detail)]


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if _database_unavailable(exc):
        _log.warning("database_unavailable", error=type(exc).__name__, path=request.scope["path"])
        detail = "a service it depends on is not answering right now; retry after Retry-After"
        problem = ApiProblem("service_unavailable", detail, headers={"Retry-After": "1"})
        return render(request_id_of(request.scope), problem)
    _log.error("unhandled_exception", exc_info=exc, path=request.scope["path"])
    detail = "something went wrong on our side; the request id helps us find out what"
    return render(request_id_of(request.scope), ApiProblem("internal_error", detail))


_UNAVAILABLE = (OperationalError, InterfaceError, InternalError, PoolTimeout, OSError, TimeoutError)
# PostgreSQL: connection exception, insufficient resources, operator intervention (shutdown,
# starting up)
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def _database_unavailable(exc: BaseException) -> bool:
    """The database is down, unreachable or dropped the connection mid-request: a
    transient condition (503 and retry), not a bug (500)."""
    cause: BaseException | None = exc
    for _ in range(8):  # the chain of causes, not forever
        if cause is None:
            return False
        if isinstance(cause, _UNAVAILABLE):
            return True
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        if str(getattr(cause, "sqlstate", "") or "").startswith(_UNAVAILABLE_SQLSTATES):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiProblem: _api_problem,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
